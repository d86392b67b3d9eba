// The federated server: one ZeroMQ ROUTER, one poll loop (zguide's
// mdbroker). Clients join; each round the global model (a state dict: the
// server knows no network class) goes through
//   broadcast -> receive updates -> before-rules -> aggregate -> after-rules
//   -> record
// where the rules are the Strategy's (strategy.h) and the record (evaluation,
// metrics, checkpoint) runs while the next round's clients train.
// The socket is a ZmtpRouter: no message from a peer is held beyond the
// whole model's size, no send blocks (what cannot be delivered is dropped
// and counted), and a peer gets a bounded rate of rejects and challenges
// (RejectBudget). A client joins by signing the challenge its connection was
// sent (protocol/handshake.h); it counts, and is sampled, only while that
// connection is open. Only round tasks and the shutdown are signed, under
// the key of the client joined on the connection they go to; challenges and
// rejects go unsigned. Not thread-safe: one Server per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "aggregator/reject_budget.h"
#include "aggregator/strategy.h"
#include "core/state_dict.h"
#include "core/status.h"
#include "protocol/channel.h"
#include "protocol/handshake.h"
#include "protocol/messages.h"
#include "protocol/zmtp_router.h"

namespace fedvar::aggregator {

struct ServerOptions {
  std::string endpoint = "tcp://127.0.0.1:5555";  // bind address; port * = any free one
  int rounds = 10;
  int first_round = 1;    // > 1 when resuming a run (resume.h); at most `rounds`
  int min_clients = 2;    // joined clients needed before round 1 starts
  double fraction = 1.0;  // share of joined clients sampled per round (>= 1 client)
  int quorum = 1;         // fewest updates that make a round; fewer = global unchanged
  double round_timeout_s = 600;       // deadline for updates, from the broadcast
  double join_timeout_s = 300;        // for min_clients to join
  protocol::TrainingConfig training;  // sent with every round task
  // The most samples a client may claim, at join and in an update (its
  // FedAvg weight); a claim above it is refused with the reason. Set it to
  // the largest shard a client really holds: no client outweighs that.
  int64_t max_samples = 1000000;
  std::string key;    // the federation key (non-empty); clients hold derived ones
  uint64_t seed = 0;  // client sampling and the round tasks' seeds
};

// What happened on the network side of one round.
struct RoundOutcome {
  int round = 0;                                   // 1-based
  std::vector<std::string> selected;               // client ids sent the task
  std::vector<std::string> received;               // client ids whose update was averaged
  std::vector<std::string> missing;                // selected but silent at the deadline
  std::vector<std::string> rejections;             // "client: reason" of refused messages
                                                   // (the first 100, then a count)
  int64_t rejected = 0;                            // refused messages, all of them
  std::vector<Verdict> verdicts;                   // what the before-rules did, and why
  nlohmann::json hooks = nlohmann::json::array();  // the after-rules' reports
  bool aggregated = false;        // false: below quorum or all excluded, model unchanged
  std::string unchanged_because;  // why not aggregated ("" when it was)
  double broadcast_s = 0;         // signing and sending the task
  double train_wait_s = 0;        // broadcast end -> last update (or deadline)
  double aggregate_s = 0;         // holding or folding updates, before-rules, the rule
  double hook_s = 0;              // the after-rules
};

// Once per round with the global model the after-rules left, called just
// after the next round's broadcast so that it overlaps the clients' training;
// the last round's runs before the shutdown. An error stops the run.
using RecordFn = std::function<Status(const RoundOutcome&, const StateDict& global)>;

class Server {
 public:
  // `global` is the initial global model; `strategy` (not owned) must
  // outlive run().
  Server(ServerOptions options, StateDict global, Strategy& strategy);
  ~Server();

  // Binds the ROUTER and draws the run id. kInvalidArgument on a bad option,
  // kUnavailable when the endpoint cannot be bound.
  Status bind();
  // The bound endpoint (with the real port when the option said *).
  std::string endpoint() const;

  // Runs every round, then tells all joined clients to shut down (also when
  // it fails). kUnavailable when too few clients join in time; a callback
  // error is returned as is, a callback's exception as kInternal.
  Status run(const RecordFn& record);

 private:
  struct Client {
    std::string identity;  // the ROUTER identity of its connection
    std::string key;       // derived from the federation key and its id
    int64_t num_samples = 0;
  };
  struct RoundState {
    protocol::TrainingConfig training;
    RoundContext context;
    std::unique_ptr<RoundAggregation> aggregation;
    std::set<std::string> pending;  // selected, not yet answered
    RoundOutcome* outcome = nullptr;
    int64_t unlisted = 0;  // rejections not listed in the outcome
    double accumulate_s = 0;
    int round() const { return context.round; }
  };

  Status run_rounds(const RecordFn& record);
  Status wait_for_clients();
  // `record_previous` (may be empty) runs right after the broadcast.
  Status run_round(int round, RoundOutcome& outcome,
                   const std::function<Status()>& record_previous);
  // The round's context and aggregation, sent to the sampled clients.
  Status broadcast(RoundState& state);
  // Before-rules, the aggregation rule and the after-rules on the updates.
  Status aggregate(RoundState& state);
  std::vector<std::string> sample_clients(int round) const;
  // Handles one incoming message; `round_state` is null outside a round.
  void handle_message(const protocol::Inbound& inbound, RoundState* round_state);
  // Polls once, up to `timeout_ms`; handles what arrived. Errors: socket failure.
  Status poll_once(long timeout_ms, RoundState* round_state);
  void handle_hello(const std::string& identity);
  void handle_join(const std::string& identity, const protocol::Join& join,
                   RoundState* round_state);
  void handle_update(const std::string& identity, const protocol::Update& update,
                     RoundState* round_state);
  // The connection `identity` is gone: its challenge is forgotten and the
  // client joined on it dropped (from the round too, as missing).
  void handle_closed(const std::string& identity, RoundState* round_state);
  // Forgets client `id` and which connection it joined on.
  void drop_client(const std::string& id);
  // Records `rejection` in the round's outcome (if a round is open) and,
  // within the peer's budget, logs `reason` and sends it as an unsigned Reject.
  void refuse(const std::string& identity, const std::string& reason,
              const std::string& rejection, RoundState* round_state);
  // Sends without blocking, signed under `key` (unused for an unsigned kind);
  // a failure is counted in dropped_sends_.
  Status send(const std::string& identity, protocol::EncodedMessage& message,
              const std::string& key);
  void shutdown_clients() noexcept;

  ServerOptions options_;
  StateDict global_;  // on CPU: what the round tasks carry
  Strategy& strategy_;
  zmq::context_t context_;
  std::unique_ptr<protocol::ZmtpRouter> router_;
  std::unique_ptr<protocol::Handshake> handshake_;          // this run's id, challenges
  std::map<std::string, std::unique_ptr<Client>> clients_;  // by client id
  // By connection: the client joined on it (the inverse of Client::identity).
  std::map<std::string, std::string> client_on_;
  RejectBudget reject_budget_;
  RejectBudget challenge_budget_;  // the same rate, for answers to hellos
  int64_t unanswered_ = 0;     // refused messages and hellos left unanswered (budgets)
  int64_t dropped_sends_ = 0;  // messages a peer could not take (gone, not reading)
};

}  // namespace fedvar::aggregator

// The federated server: one ZeroMQ ROUTER, one poll loop (zguide's
// mdbroker). Clients join; each round the global model (a state dict: the
// server knows no network class) goes through
//   broadcast -> receive updates -> before-rules -> aggregate -> after-rules
//   -> record
// where the rules are the Strategy's (strategy.h) and the record (evaluation,
// metrics, checkpoint) runs while the next round's clients train.
// Not thread-safe: one Server per thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "aggregator/strategy.h"
#include "core/state_dict.h"
#include "core/status.h"
#include "protocol/messages.h"

namespace fedvar::aggregator {

struct ServerOptions {
  std::string endpoint = "tcp://127.0.0.1:5555";  // bind address; port * = any free one
  int rounds = 10;
  int min_clients = 2;    // joined clients needed before round 1 starts
  double fraction = 1.0;  // share of joined clients sampled per round (>= 1 client)
  int quorum = 1;         // fewest updates that make a round; fewer = global unchanged
  double round_timeout_s = 600;       // deadline for updates, from the broadcast
  double join_timeout_s = 300;        // for min_clients to join
  protocol::TrainingConfig training;  // sent with every round task
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

  // Binds the ROUTER. kInvalidArgument on a bad option, kUnavailable when the
  // endpoint cannot be bound.
  Status bind();
  // The bound endpoint (with the real port when the option said *).
  std::string endpoint() const;

  // Runs every round, then tells all joined clients to shut down (also when
  // it fails). kUnavailable when too few clients join in time; a callback
  // error is returned as is, a callback's exception as kInternal.
  Status run(const RecordFn& record);

 private:
  struct Client;
  struct RoundState;
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
  void handle_message(RoundState* round_state);
  // Polls once, up to `timeout_ms`; handles what arrived. Errors: socket failure.
  Status poll_once(long timeout_ms, RoundState* round_state);
  void reject(const std::string& identity, const std::string& client_id,
              const std::string& reason);
  void handle_update(const std::string& identity, const protocol::Update& update,
                     RoundState* round_state);
  void shutdown_clients() noexcept;

  ServerOptions options_;
  StateDict global_;  // on CPU: what the round tasks carry
  Strategy& strategy_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::map<std::string, std::unique_ptr<Client>> clients_;  // by client id
};

}  // namespace fedvar::aggregator

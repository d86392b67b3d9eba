#include "aggregator/server.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>

#include "core/log.h"
#include "core/stop.h"
#include "core/stopwatch.h"
#include "protocol/auth.h"
#include "protocol/channel.h"
#include "protocol/hex.h"

namespace fedvar::aggregator {
namespace {

// Room for a message's header next to the model's bytes.
constexpr uint64_t kHeaderBytes = uint64_t{1} << 20;
// Pieces read off the socket per poll (8 KiB each) before timers are checked.
constexpr int kReadsPerPoll = 256;

// The round task's seed: distinct per round, reproducible from the run seed.
uint64_t round_seed(uint64_t seed, int round) {
  return seed * 1000003ULL + static_cast<uint64_t>(round);
}

int64_t state_bytes(const StateDict& state) {
  int64_t bytes = 0;
  for (const auto& [name, t] : state) bytes += static_cast<int64_t>(t.nbytes());
  return bytes;
}

Status check_options(const ServerOptions& o) {
  if (o.key.empty()) return Status::InvalidArgument("an HMAC key is required");
  if (o.rounds < 1) return Status::InvalidArgument("rounds must be >= 1");
  if (o.first_round < 1 || o.first_round > o.rounds) {
    return Status::InvalidArgument("the first round must be in 1..rounds");
  }
  if (o.min_clients < 1) return Status::InvalidArgument("min clients must be >= 1");
  if (!(o.fraction > 0 && o.fraction <= 1)) {
    return Status::InvalidArgument("fraction must be in (0, 1]");
  }
  if (o.quorum < 1) return Status::InvalidArgument("quorum must be >= 1");
  if (o.max_samples < 1) return Status::InvalidArgument("max samples must be >= 1");
  if (!(o.round_timeout_s > 0) || !(o.join_timeout_s > 0)) {
    return Status::InvalidArgument("timeouts must be positive");
  }
  return Status::Ok();
}

}  // namespace

Server::Server(ServerOptions options, StateDict global, Strategy& strategy)
    : options_(std::move(options)), global_(std::move(global)), strategy_(strategy) {}

Server::~Server() = default;

Status Server::bind() {
  FEDVAR_RETURN_IF_ERROR(check_options(options_));
  // An update is the largest message a client sends: a header, a frame per
  // tensor of the model and the tag. Nothing larger is ever held.
  protocol::RouterOptions router;
  router.limits.max_frames = global_.size() + 2;
  router.limits.max_bytes = static_cast<uint64_t>(state_bytes(global_)) + kHeaderBytes;
  router.linger_ms = 5000;  // let Shutdown reach the clients
  FEDVAR_ASSIGN_OR_RETURN(handshake_, protocol::Handshake::start());
  router_ = std::make_unique<protocol::ZmtpRouter>(context_);
  FEDVAR_RETURN_IF_ERROR(router_->bind(options_.endpoint, router));
  spdlog::info("server: run {} listening on {} (messages up to {} frames, {} bytes)",
               protocol::to_hex(handshake_->run_id()), endpoint(),
               router.limits.max_frames, router.limits.max_bytes);
  return Status::Ok();
}

std::string Server::endpoint() const { return router_ ? router_->endpoint() : ""; }

Status Server::run(const RecordFn& record) {
  if (!router_) return Status::FailedPrecondition("bind() the server before run()");
  // However the run ends (done, an error, an exception from a callback), the
  // clients are told to stop, so that none waits for a task until its timeout.
  struct ShutdownOnExit {
    Server& server;
    ~ShutdownOnExit() { server.shutdown_clients(); }
  } shutdown{*this};
  try {
    return run_rounds(record);
  } catch (const std::exception& e) {
    return status_from_exception("server", e);
  }
}

Status Server::run_rounds(const RecordFn& record) {
  Status status = wait_for_clients();
  std::optional<RoundOutcome> unrecorded;
  const auto record_previous = [&]() -> Status {
    if (!unrecorded) return Status::Ok();
    const RoundOutcome outcome = std::move(*unrecorded);
    unrecorded.reset();
    return record ? record(outcome, global_) : Status::Ok();
  };
  for (int round = options_.first_round; status.ok() && round <= options_.rounds;
       ++round) {
    RoundOutcome outcome;
    status = run_round(round, outcome, record_previous);
    if (status.ok()) unrecorded = std::move(outcome);
  }
  if (status.ok()) status = record_previous();
  return status;
}

Status Server::wait_for_clients() {
  const auto start = Clock::now();
  spdlog::info("server: waiting for {} client(s)", options_.min_clients);
  while (static_cast<int>(clients_.size()) < options_.min_clients) {
    if (stop_requested()) return Status::Unavailable("stopped while waiting for clients");
    const double left = options_.join_timeout_s - seconds_since(start);
    if (left <= 0) {
      return Status::Unavailable("only " + std::to_string(clients_.size()) + " of " +
                                 std::to_string(options_.min_clients) +
                                 " clients joined within " +
                                 std::to_string(options_.join_timeout_s) + " s");
    }
    FEDVAR_RETURN_IF_ERROR(poll_once(std::min<long>(500, left * 1000 + 1), nullptr));
  }
  return Status::Ok();
}

std::vector<std::string> Server::sample_clients(int round) const {
  std::vector<std::string> ids;
  for (const auto& [id, client] : clients_) ids.push_back(id);
  std::mt19937_64 rng(round_seed(options_.seed, round));
  std::shuffle(ids.begin(), ids.end(), rng);
  const auto n = static_cast<double>(ids.size());
  const size_t k = std::clamp<size_t>(std::lround(options_.fraction * n), 1, ids.size());
  ids.resize(k);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status Server::run_round(int round, RoundOutcome& outcome,
                         const std::function<Status()>& record_previous) {
  outcome.round = round;
  if (clients_.empty()) return Status::Unavailable("no client is left");
  RoundState state;
  state.outcome = &outcome;
  state.training = options_.training;
  state.training.seed = round_seed(options_.seed, round);
  state.context = {round, &global_, &state.training, state.training.seed};
  FEDVAR_RETURN_IF_ERROR(broadcast(state));
  // The clients train now; the previous round's record runs meanwhile.
  // Updates queue in ZeroMQ until the loop below reads them.
  const auto wait_start = Clock::now();
  if (record_previous) FEDVAR_RETURN_IF_ERROR(record_previous());
  while (!state.pending.empty()) {
    if (stop_requested())
      return Status::Unavailable("stopped during round " + std::to_string(round));
    const double left = options_.round_timeout_s - seconds_since(wait_start);
    if (left <= 0) break;
    FEDVAR_RETURN_IF_ERROR(poll_once(std::min<long>(500, left * 1000 + 1), &state));
  }
  outcome.train_wait_s = seconds_since(wait_start);
  for (const std::string& id : state.pending) {
    spdlog::warn("round {}: client {} missed the deadline, dropped", round, id);
    outcome.missing.push_back(id);
    drop_client(id);
  }
  return aggregate(state);
}

Status Server::broadcast(RoundState& state) {
  RoundOutcome& outcome = *state.outcome;
  outcome.selected = sample_clients(state.round());
  spdlog::info("round {}: sending the global model to {} client(s)", state.round(),
               outcome.selected.size());
  const auto start = Clock::now();
  state.context.expected_updates = static_cast<int64_t>(outcome.selected.size());
  state.aggregation = strategy_.start_round(state.context);
  protocol::RoundTask task{state.round(), global_, state.training, handshake_->run_id()};
  FEDVAR_ASSIGN_OR_RETURN(auto encoded_task, protocol::encode_message(task));
  for (const std::string& id : outcome.selected) {
    const Client& client = *clients_[id];
    const Status sent = send(client.identity, encoded_task, client.key);
    if (sent.ok()) {
      state.pending.insert(id);
    } else {
      spdlog::warn("round {}: client {} unreachable ({}), dropped", state.round(), id,
                   sent.message());
      outcome.missing.push_back(id);
      drop_client(id);
    }
  }
  outcome.broadcast_s = seconds_since(start);
  return Status::Ok();
}

Status Server::aggregate(RoundState& state) {
  RoundOutcome& outcome = *state.outcome;
  const auto start = Clock::now();
  std::optional<StateDict> aggregated;
  if (state.aggregation->updates() < options_.quorum) {
    outcome.unchanged_because = std::to_string(state.aggregation->updates()) +
                                " update(s), fewer than the quorum " +
                                std::to_string(options_.quorum);
  } else {
    auto result = state.aggregation->finish(outcome.verdicts);
    // A rule that cannot run on this round (Krum with too few updates) leaves
    // the model as it was; any other failure stops the run.
    if (!result.ok() && result.status().code() != Code::kInvalidArgument) {
      return result.status();
    }
    if (!result.ok()) outcome.unchanged_because = result.status().message();
    if (result.ok()) aggregated = std::move(result).value();
    if (result.ok() && !aggregated) outcome.unchanged_because = "every update excluded";
  }
  state.aggregation.reset();
  if (state.unlisted > 0) {
    outcome.rejections.push_back("and " + std::to_string(state.unlisted) +
                                 " more refused message(s), not listed");
  }
  outcome.aggregate_s = state.accumulate_s + seconds_since(start);
  outcome.aggregated = aggregated.has_value();
  if (!aggregated) {
    spdlog::warn("round {}: global model unchanged: {}", state.round(),
                 outcome.unchanged_because);
    return Status::Ok();
  }
  const auto hook_start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(outcome.hooks, strategy_.after(*aggregated, state.context));
  outcome.hook_s = seconds_since(hook_start);
  global_ = std::move(*aggregated);  // the next round's model
  return Status::Ok();
}

Status Server::poll_once(long timeout_ms, RoundState* round_state) {
  zmq::pollitem_t items[] = {{router_->socket().handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 1, std::chrono::milliseconds(std::max<long>(timeout_ms, 0)));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR)
      return Status::Ok();  // a signal; the caller checks stop_requested()
    return Status::Unavailable(std::string("poll: ") + e.what());
  }
  if (!(items[0].revents & ZMQ_POLLIN)) return Status::Ok();
  FEDVAR_RETURN_IF_ERROR(router_->read_available(kReadsPerPoll));
  while (std::optional<protocol::Inbound> inbound = router_->pop()) {
    handle_message(*inbound, round_state);
  }
  return Status::Ok();
}

void Server::shutdown_clients() noexcept {
  if (!router_) return;
  if (!handshake_) return;
  auto shutdown = protocol::encode_message(protocol::Shutdown{handshake_->run_id()});
  for (const auto& [id, client] : clients_) {
    if (shutdown.ok()) (void)send(client->identity, *shutdown, client->key);
  }
  spdlog::info("server: told {} client(s) to shut down", clients_.size());
  if (unanswered_ > 0 || dropped_sends_ > 0) {
    spdlog::warn(
        "server: {} refused message(s) and hello(s) left unanswered (budgets), {} "
        "send(s) dropped (peer gone or not reading)",
        unanswered_, dropped_sends_);
  }
}

}  // namespace fedvar::aggregator

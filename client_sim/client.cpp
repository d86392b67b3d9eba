#include "client_sim/client.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <zmq.hpp>

#include "core/log.h"
#include "core/model_io.h"
#include "core/stop.h"
#include "core/stopwatch.h"
#include "core/trainer.h"
#include "protocol/channel.h"
#include "protocol/hex.h"

namespace fedvar::client_sim {
namespace {

// FNV-1a: a stable hash of the client id, so that clients given the same
// task seed still shuffle differently.
uint64_t stable_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

class Client {
 public:
  Client(const ClientOptions& options, const Dataset& shard)
      : options_(options), shard_(shard) {}

  // Local training on the task's global model; the weights to send back.
  Result<protocol::Update> train(const protocol::RoundTask& task) {
    TensorFile global{task.tensors, {}};
    if (!model_) {
      FEDVAR_ASSIGN_OR_RETURN(auto arch, infer_resnet_options(global));
      model_ = ResNet18(arch);
    }
    FEDVAR_RETURN_IF_ERROR(load_resnet_state(model_, global));
    TrainOptions opts;
    opts.epochs = static_cast<int>(task.config.epochs);
    opts.lr = task.config.lr;
    opts.momentum = task.config.momentum;
    opts.weight_decay = task.config.weight_decay;
    opts.batch_size = task.config.batch_size;
    opts.seed = task.config.seed ^ stable_hash(options_.client_id) ^ options_.seed;
    opts.normalization = options_.normalization;
    opts.device = options_.device;
    TrainHooks hooks;
    const bool attacking =
        options_.attack && options_.attack->rounds.contains(task.round);
    if (attacking) {
      hooks.transform = poison_transform(
          {options_.attack->trigger, options_.attack->target, options_.attack->ratio},
          opts.seed);
    }
    FEDVAR_ASSIGN_OR_RETURN(auto history, train_model(model_, shard_, opts, hooks));
    const EpochStats& last = history.back();
    spdlog::info("{} round {}: loss {:.4f} train acc {:.1f}% {}({:.1f}s)",
                 options_.client_id, task.round, last.loss, last.train_acc,
                 attacking ? "poisoned " : "", last.seconds);
    protocol::Update update{task.round, options_.client_id, shard_.size(),
                            resnet_state(model_).tensors, task.run_id};
    if (attacking && options_.attack->scale != 1.0) {
      FEDVAR_ASSIGN_OR_RETURN(update.tensors, scale_update(update.tensors, task.tensors,
                                                           options_.attack->scale));
    }
    return update;
  }

 private:
  const ClientOptions& options_;
  const Dataset& shard_;
  ResNet18 model_{nullptr};
};

// The client's side of a session with the server: a hello, the challenge's
// answer (a join signing the server's run id and nonce), then the tasks of
// that run. A task or shutdown naming another run is ignored; a reject is
// answered by joining again, through a new challenge.
class Session {
 public:
  Session(const ClientOptions& options, int64_t num_samples, zmq::socket_t& socket)
      : options_(options), num_samples_(num_samples), socket_(socket) {}

  // Asks for a challenge; the next one that comes is answered with a join.
  Status hello() {
    hello_sent_ = Clock::now();
    return protocol::send_message(socket_, protocol::Hello{}, options_.key);
  }

  // The connection to the server was made again (the server restarted, say
  // after a kill, or the network broke): whoever listens now has not seen
  // this client. Asks for its challenge.
  Status reconnected() {
    spdlog::info("{}: reconnected to {}; joining again", options_.client_id,
                 options_.endpoint);
    return hello();
  }

  // Asks again when a hello went unanswered for kHelloRetryS (the server
  // answers hellos within a budget, and a peer's full queue loses them).
  Status on_idle() {
    if (!hello_sent_ || seconds_since(*hello_sent_) < kHelloRetryS) return Status::Ok();
    return hello();
  }

  // Handles one message of the server; true once the run is over.
  Result<bool> handle(const protocol::Message& message, Client& client) {
    if (const auto* challenge = std::get_if<protocol::Challenge>(&message)) {
      FEDVAR_RETURN_IF_ERROR(join(*challenge));
    } else if (const auto* reject = std::get_if<protocol::Reject>(&message)) {
      // Most often: dropped for missing a deadline. Join again.
      spdlog::warn("{}: rejected: {}; joining again", options_.client_id, reject->reason);
      FEDVAR_RETURN_IF_ERROR(hello());
    } else if (const auto* task = std::get_if<protocol::RoundTask>(&message)) {
      if (!of_this_run(task->run_id, "round task")) return false;
      FEDVAR_ASSIGN_OR_RETURN(auto update, client.train(*task));
      FEDVAR_RETURN_IF_ERROR(protocol::send_message(socket_, update, options_.key));
    } else if (const auto* shutdown = std::get_if<protocol::Shutdown>(&message)) {
      return of_this_run(shutdown->run_id, "shutdown");
    }
    return false;
  }

 private:
  // Seconds between hellos that get no challenge.
  static constexpr double kHelloRetryS = 5;

  Status join(const protocol::Challenge& challenge) {
    if (!hello_sent_) {
      spdlog::warn("{}: ignored a challenge it did not ask for", options_.client_id);
      return Status::Ok();
    }
    hello_sent_.reset();
    run_id_ = challenge.run_id;
    const protocol::Join join{options_.client_id, num_samples_, challenge.run_id,
                              challenge.nonce};
    FEDVAR_RETURN_IF_ERROR(protocol::send_message(socket_, join, options_.key));
    spdlog::info("{}: joined {} (run {}) with {} samples", options_.client_id,
                 options_.endpoint, protocol::to_hex(run_id_), num_samples_);
    return Status::Ok();
  }

  bool of_this_run(const std::string& run_id, const char* what) const {
    if (!run_id_.empty() && run_id == run_id_) return true;
    spdlog::warn("{}: ignored a {} of another run", options_.client_id, what);
    return false;
  }

  const ClientOptions& options_;
  const int64_t num_samples_;
  zmq::socket_t& socket_;
  std::string run_id_;                           // of the last challenge answered
  std::optional<Clock::time_point> hello_sent_;  // while a challenge is awaited
};

// Counts the ZMTP handshakes of the client's connection (libzmq's socket
// monitor): after the first, each one is a new connection, possibly to a new
// server.
class ConnectionWatch : public zmq::monitor_t {
 public:
  // Watches `socket`; kInternal when libzmq cannot monitor it.
  Status start(zmq::socket_t& socket) {
    try {
      const std::string address = "inproc://fedvar-client-monitor-" +
                                  std::to_string(reinterpret_cast<uintptr_t>(this));
      init(socket, address, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    } catch (const zmq::error_t& e) {
      return Status::Internal(std::string("cannot watch the connection: ") + e.what());
    }
    return Status::Ok();
  }

  // Handles the events that came; true when a connection after the first
  // completed its handshake.
  bool reconnected() {
    const int before = handshakes_;
    while (check_event(0)) {
    }
    return handshakes_ > std::max(before, 1);
  }

 private:
  void on_event_handshake_succeeded(const zmq_event_t&, const char*) override {
    ++handshakes_;
  }
  int handshakes_ = 0;
};

}  // namespace

Status run_client(const ClientOptions& options, const Dataset& shard) {
  if (options.key.empty()) return Status::InvalidArgument("an HMAC key is required");
  if (shard.size() == 0) return Status::InvalidArgument("the client's shard is empty");
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  try {
    socket.set(zmq::sockopt::linger, 5000);  // let the last update leave
    socket.connect(options.endpoint);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to " + options.endpoint + ": " +
                                   e.what());
  }
  ConnectionWatch watch;
  FEDVAR_RETURN_IF_ERROR(watch.start(socket));
  Client client(options, shard);
  Session session(options, shard.size(), socket);
  FEDVAR_RETURN_IF_ERROR(session.hello());
  auto last_heard = Clock::now();
  while (!stop_requested()) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(500));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::Unavailable(std::string("poll: ") + e.what());
    }
    if (watch.reconnected()) FEDVAR_RETURN_IF_ERROR(session.reconnected());
    if (!(items[0].revents & ZMQ_POLLIN)) {
      FEDVAR_RETURN_IF_ERROR(session.on_idle());
      const double silent = seconds_since(last_heard);
      if (silent > options.idle_timeout_s) {
        return Status::Unavailable("no message from the server for " +
                                   std::to_string(static_cast<int>(silent)) + " s");
      }
      continue;
    }
    FEDVAR_ASSIGN_OR_RETURN(auto received,
                            protocol::receive_message(socket, options.key, false));
    last_heard = Clock::now();
    if (!received.message.ok()) {
      spdlog::warn("{}: ignored a bad message: {}", options.client_id,
                   received.message.status().message());
      continue;
    }
    FEDVAR_ASSIGN_OR_RETURN(const bool over, session.handle(*received.message, client));
    if (over) {
      spdlog::info("{}: shutdown", options.client_id);
      return Status::Ok();
    }
    last_heard = Clock::now();
  }
  return Status::Unavailable(options.client_id + ": stopped");
}

}  // namespace fedvar::client_sim

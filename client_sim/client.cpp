#include "client_sim/client.h"

#include <chrono>
#include <zmq.hpp>

#include "core/log.h"
#include "core/model_io.h"
#include "core/stop.h"
#include "core/trainer.h"
#include "protocol/channel.h"

namespace fedvar::client_sim {
namespace {

using Clock = std::chrono::steady_clock;

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
                            resnet_state(model_).tensors};
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
  const protocol::Join join{options.client_id, shard.size()};
  FEDVAR_RETURN_IF_ERROR(protocol::send_message(socket, join, options.key));
  spdlog::info("{}: joined {} with {} samples", options.client_id, options.endpoint,
               shard.size());
  Client client(options, shard);
  auto last_heard = Clock::now();
  while (!stop_requested()) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(500));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::Unavailable(std::string("poll: ") + e.what());
    }
    if (!(items[0].revents & ZMQ_POLLIN)) {
      const double silent =
          std::chrono::duration<double>(Clock::now() - last_heard).count();
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
    const protocol::Message& message = received.message.value();
    if (std::holds_alternative<protocol::Shutdown>(message)) {
      spdlog::info("{}: shutdown", options.client_id);
      return Status::Ok();
    }
    if (const auto* reject = std::get_if<protocol::Reject>(&message)) {
      // Most often: dropped for missing a deadline. Join again.
      spdlog::warn("{}: rejected: {}; joining again", options.client_id, reject->reason);
      FEDVAR_RETURN_IF_ERROR(protocol::send_message(socket, join, options.key));
      continue;
    }
    if (const auto* task = std::get_if<protocol::RoundTask>(&message)) {
      FEDVAR_ASSIGN_OR_RETURN(auto update, client.train(*task));
      FEDVAR_RETURN_IF_ERROR(protocol::send_message(socket, update, options.key));
      last_heard = Clock::now();
    }
  }
  return Status::Unavailable(options.client_id + ": stopped");
}

}  // namespace fedvar::client_sim

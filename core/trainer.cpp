#include "core/trainer.h"

#include <torch/torch.h>

#include <chrono>

namespace fedvar {

Result<std::vector<EpochStats>> train_model(ResNet18& model, const Dataset& data,
                                            const TrainOptions& opts,
                                            const std::optional<PoisonOptions>& poison,
                                            const TrainCallbacks& callbacks) {
  if (data.size() == 0) return Status::InvalidArgument("training set is empty");
  if (data.channels() != model->options().in_channels) {
    return Status::InvalidArgument("images have " + std::to_string(data.channels()) +
                                   " channel(s), the model " +
                                   std::to_string(model->options().in_channels));
  }
  FEDVAR_RETURN_IF_ERROR(opts.normalization.check_channels(data.channels()));
  model->to(opts.device);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(opts.lr)
                                                 .momentum(opts.momentum)
                                                 .weight_decay(opts.weight_decay));
  std::mt19937_64 rng(opts.seed);
  auto gen = at::detail::createCPUGenerator(opts.seed);
  const int64_t batches = (data.size() + opts.batch_size - 1) / opts.batch_size;
  std::vector<EpochStats> history;
  for (int epoch = 1; epoch <= opts.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    auto order = torch::randperm(data.size(), gen, torch::kLong);
    EpochStats stats;
    stats.epoch = epoch;
    int64_t correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
      auto idx = order.slice(0, b * opts.batch_size,
                             std::min((b + 1) * opts.batch_size, data.size()));
      auto x = to_unit_float(data.images.index_select(0, idx), opts.device);
      auto y = data.labels.index_select(0, idx).to(opts.device);
      if (poison) {
        stats.poisoned +=
            poison_batch(poison->trigger, x, y, poison->target, poison->ratio, rng);
      }
      sgd.zero_grad();
      auto logits = model->forward(normalize(x, opts.normalization));
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      sgd.step();
      stats.loss += loss.item<double>() * static_cast<double>(idx.size(0));
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      if (callbacks.on_batch && (b + 1) % callbacks.report_every == 0) {
        callbacks.on_batch(epoch, b + 1, batches, loss.item<double>());
      }
    }
    stats.loss /= static_cast<double>(data.size());
    stats.train_acc =
        100.0 * static_cast<double>(correct) / static_cast<double>(data.size());
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (callbacks.on_epoch) callbacks.on_epoch(stats);
    history.push_back(stats);
  }
  return history;
}

}  // namespace fedvar

#include "core/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <random>

#include "core/stopwatch.h"

namespace fedvar {
namespace {

void set_lr(torch::optim::SGD& sgd, double lr) {
  for (auto& group : sgd.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

Status check_inputs(ResNet18& model, const Dataset& data, const TrainOptions& opts) {
  if (data.size() == 0) return Status::InvalidArgument("training set is empty");
  if (data.channels() != model->options().in_channels) {
    return Status::InvalidArgument("images have " + std::to_string(data.channels()) +
                                   " channel(s), the model " +
                                   std::to_string(model->options().in_channels));
  }
  return opts.normalization.check_channels(data.channels());
}

std::vector<EpochStats> run_epochs(ResNet18& model, const Dataset& data,
                                   const TrainOptions& opts, const TrainHooks& hooks) {
  model->to(opts.device);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(opts.lr)
                                                 .momentum(opts.momentum)
                                                 .weight_decay(opts.weight_decay));
  auto gen = at::detail::createCPUGenerator(opts.seed);
  const LossFn& loss_fn = hooks.loss ? hooks.loss : LossFn(cross_entropy);
  const int64_t batches = (data.size() + opts.batch_size - 1) / opts.batch_size;
  const int64_t steps = opts.epochs * batches;
  std::vector<EpochStats> history;
  for (int epoch = 1; epoch <= opts.epochs; ++epoch) {
    const auto start = Clock::now();
    auto order = torch::randperm(data.size(), gen, torch::kLong);
    EpochStats stats;
    stats.epoch = epoch;
    int64_t correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
      auto idx = order.slice(0, b * opts.batch_size,
                             std::min((b + 1) * opts.batch_size, data.size()));
      auto x = to_unit_float(data.images.index_select(0, idx), opts.device);
      auto y = data.labels.index_select(0, idx).to(opts.device);
      if (hooks.transform) stats.poisoned += hooks.transform(x, y, gen);
      if (opts.cosine) set_lr(sgd, cosine_lr(opts.lr, (epoch - 1) * batches + b, steps));
      sgd.zero_grad();
      BatchLoss out = loss_fn(model, normalize(x, opts.normalization), y);
      out.loss.backward();
      sgd.step();
      if (hooks.after_step) hooks.after_step();
      const double loss = out.loss.item<double>();
      stats.loss += loss * static_cast<double>(idx.size(0));
      correct += out.logits.argmax(1).eq(y).sum().item<int64_t>();
      if (hooks.on_batch && (b + 1) % hooks.report_every == 0) {
        hooks.on_batch(epoch, b + 1, batches, loss);
      }
    }
    stats.loss /= static_cast<double>(data.size());
    stats.train_acc =
        100.0 * static_cast<double>(correct) / static_cast<double>(data.size());
    stats.seconds = seconds_since(start);
    if (hooks.on_epoch) hooks.on_epoch(stats);
    history.push_back(stats);
  }
  return history;
}

}  // namespace

Result<std::vector<EpochStats>> train_model(ResNet18& model, const Dataset& data,
                                            const TrainOptions& opts,
                                            const TrainHooks& hooks) {
  FEDVAR_RETURN_IF_ERROR(check_inputs(model, data, opts));
  try {
    return run_epochs(model, data, opts, hooks);
  } catch (const std::exception& e) {
    return status_from_exception("training", e);
  }
}

BatchLoss cross_entropy(ResNet18& model, const torch::Tensor& x, const torch::Tensor& y) {
  auto logits = model->forward(x);
  return {torch::nn::functional::cross_entropy(logits, y), logits};
}

BatchTransform poison_transform(const PoisonOptions& poison, uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [poison, rng](torch::Tensor& x, torch::Tensor& y, at::Generator&) {
    return poison_batch(poison.trigger, x, y, poison.target, poison.ratio, *rng);
  };
}

double cosine_lr(double lr, int64_t step, int64_t steps) {
  if (steps <= 0) return lr;
  return lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / steps));
}

}  // namespace fedvar

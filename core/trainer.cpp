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

// What one training run keeps on opts.device for all its steps: the data set
// (copied once, so that a batch is a gather there rather than a host-to-device
// copy per step) and the normalization's mean and std.
struct DeviceData {
  DeviceData(const Dataset& data, const TrainOptions& opts)
      : images(data.images.to(opts.device)), labels(data.labels.to(opts.device)) {
    const auto shape = std::vector<int64_t>{
        1, static_cast<int64_t>(opts.normalization.mean.size()), 1, 1};
    const auto float_opts =
        torch::TensorOptions().dtype(torch::kFloat).device(opts.device);
    const auto& n = opts.normalization;
    mean = torch::tensor(std::vector<float>(n.mean.begin(), n.mean.end()), float_opts)
               .view(shape);
    std = torch::tensor(std::vector<float>(n.std.begin(), n.std.end()), float_opts)
              .view(shape);
  }
  torch::Tensor images, labels;  // uint8 [N, C, H, W], int64 [N]
  torch::Tensor mean, std;       // float [1, C, 1, 1]
};

// One epoch of SGD. The loss and the correct count are summed on the device
// and read once at the end: a read per step would wait for the device.
EpochStats run_epoch(ResNet18& model, torch::optim::SGD& sgd, const DeviceData& data,
                     int epoch, at::Generator& gen, const TrainOptions& opts,
                     const TrainHooks& hooks) {
  const auto start = Clock::now();
  const LossFn& loss_fn = hooks.loss ? hooks.loss : LossFn(cross_entropy);
  const int64_t size = data.labels.size(0);
  const int64_t batches = (size + opts.batch_size - 1) / opts.batch_size;
  const int64_t steps = opts.epochs * batches;
  const auto order = torch::randperm(size, gen, torch::kLong).to(opts.device);
  auto loss_sum =
      torch::zeros({}, torch::TensorOptions(torch::kDouble).device(opts.device));
  auto correct = torch::zeros({}, torch::TensorOptions(torch::kLong).device(opts.device));
  EpochStats stats;
  stats.epoch = epoch;
  for (int64_t b = 0; b < batches; ++b) {
    auto idx =
        order.slice(0, b * opts.batch_size, std::min((b + 1) * opts.batch_size, size));
    auto x = data.images.index_select(0, idx).to(torch::kFloat).div_(255.0);
    auto y = data.labels.index_select(0, idx);
    if (hooks.transform) stats.poisoned += hooks.transform(x, y, gen);
    if (opts.cosine) set_lr(sgd, cosine_lr(opts.lr, (epoch - 1) * batches + b, steps));
    sgd.zero_grad();
    BatchLoss out = loss_fn(model, (x - data.mean) / data.std, y);
    out.loss.backward();
    sgd.step();
    if (hooks.after_step) hooks.after_step();
    loss_sum.add_(out.loss.detach(), static_cast<double>(idx.size(0)));
    correct.add_(out.logits.argmax(1).eq(y).sum());
    if (hooks.on_batch && (b + 1) % hooks.report_every == 0) {
      hooks.on_batch(epoch, b + 1, batches, out.loss.item<double>());
    }
  }
  stats.loss = loss_sum.item<double>() / static_cast<double>(size);
  stats.train_acc =
      100.0 * static_cast<double>(correct.item<int64_t>()) / static_cast<double>(size);
  stats.seconds = seconds_since(start);
  return stats;
}

std::vector<EpochStats> run_epochs(ResNet18& model, const Dataset& data,
                                   const TrainOptions& opts, const TrainHooks& hooks) {
  model->to(opts.device);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(opts.lr)
                                                 .momentum(opts.momentum)
                                                 .weight_decay(opts.weight_decay));
  auto gen = at::detail::createCPUGenerator(opts.seed);
  const DeviceData on_device(data, opts);
  std::vector<EpochStats> history;
  for (int epoch = 1; epoch <= opts.epochs; ++epoch) {
    history.push_back(run_epoch(model, sgd, on_device, epoch, gen, opts, hooks));
    if (hooks.on_epoch) hooks.on_epoch(history.back());
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

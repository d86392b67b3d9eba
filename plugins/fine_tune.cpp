#include "plugins/fine_tune.h"

#include <torch/torch.h>

#include <cmath>

#include "core/metrics.h"
#include "core/model_io.h"

namespace fedvar::plugins {

double cosine_lr(double lr, int64_t step, int64_t steps) {
  if (steps <= 0) return lr;
  return lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / steps));
}

namespace {

void set_lr(torch::optim::SGD& sgd, double lr) {
  for (auto& group : sgd.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

}  // namespace

torch::Tensor cross_entropy_loss(ResNet18& model, const torch::Tensor& x,
                                 const torch::Tensor& y) {
  return torch::nn::functional::cross_entropy(model->forward(x), y);
}

torch::Tensor distillation_loss(const torch::Tensor& logits, ResNet18& teacher,
                                const torch::Tensor& x, double temperature) {
  namespace F = torch::nn::functional;
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    teacher->eval();
    target = torch::softmax(teacher->forward(x) / temperature, /*dim=*/1);
  }
  auto log_p = torch::log_softmax(logits / temperature, /*dim=*/1);
  return temperature * temperature *
         F::kl_div(log_p, target, F::KLDivFuncOptions().reduction(torch::kBatchMean));
}

torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& gen) {
  constexpr int64_t kPad = 2;
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  auto padded = torch::constant_pad_nd(images, {kPad, kPad, kPad, kPad}, 0);
  auto shifts = torch::randint(0, 2 * kPad + 1, {n, 2}, gen, torch::kLong);
  auto flips = torch::rand({n}, gen) < 0.5;
  auto shift = shifts.accessor<int64_t, 2>();
  auto flip = flips.accessor<bool, 1>();
  std::vector<torch::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto crop = padded[i]
                    .slice(1, shift[i][0], shift[i][0] + h)
                    .slice(2, shift[i][1], shift[i][1] + w);
    out.push_back(flip[i] ? crop.flip({2}) : crop);
  }
  return torch::stack(out);
}

Status fine_tune(ResNet18& model, const Dataset& data, const DefenseContext& ctx,
                 const FineTuneOptions& opts, const LossFn& loss,
                 const std::function<void()>& after_step) {
  if (data.size() == 0) return Status::InvalidArgument("no clean images to fine-tune on");
  model->to(ctx.device);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(opts.lr)
                                                 .momentum(opts.momentum)
                                                 .weight_decay(opts.weight_decay));
  auto gen = at::detail::createCPUGenerator(opts.seed);
  const int64_t batches = (data.size() + opts.batch_size - 1) / opts.batch_size;
  const int64_t steps = opts.epochs * batches;
  int64_t step = 0;
  for (int epoch = 0; epoch < opts.epochs; ++epoch) {
    auto order = torch::randperm(data.size(), gen, torch::kLong);
    for (int64_t begin = 0; begin < data.size(); begin += opts.batch_size) {
      auto idx = order.slice(0, begin, std::min(begin + opts.batch_size, data.size()));
      auto unit = to_unit_float(data.images.index_select(0, idx), ctx.device);
      if (opts.augment) unit = augment_batch(unit, gen);
      auto x = normalize(unit, ctx.normalization);
      auto y = data.labels.index_select(0, idx).to(ctx.device);
      if (opts.cosine) set_lr(sgd, cosine_lr(opts.lr, step, steps));
      ++step;
      sgd.zero_grad();
      loss(model, x, y).backward();
      sgd.step();
      if (after_step) after_step();
    }
  }
  model->eval();
  return Status::Ok();
}

void recalibrate_batchnorm(ResNet18& model, const Dataset& data,
                           const DefenseContext& ctx, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  auto layers = model->conv_layers();
  std::vector<c10::optional<double>> momenta;
  for (auto& layer : layers) {
    momenta.push_back(layer.bn->options.momentum());
    layer.bn->reset_running_stats();
    layer.bn->options.momentum(c10::nullopt);  // cumulative average over the pass
  }
  model->train();
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t end = std::min(begin + batch_size, data.size());
    model->forward(normalize(to_unit_float(data.images.slice(0, begin, end), ctx.device),
                             ctx.normalization));
  }
  for (size_t i = 0; i < layers.size(); ++i) layers[i].bn->options.momentum(momenta[i]);
  model->eval();
}

BatchNormStats batchnorm_stats(ResNet18& model) {
  BatchNormStats stats;
  for (auto& layer : model->conv_layers()) {
    stats.mean.push_back(layer.bn->running_mean.clone());
    stats.var.push_back(layer.bn->running_var.clone());
  }
  return stats;
}

void set_batchnorm_stats(ResNet18& model, const BatchNormStats& stats) {
  torch::NoGradGuard no_grad;
  auto layers = model->conv_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i].bn->running_mean.copy_(stats.mean[i]);
    layers[i].bn->running_var.copy_(stats.var[i]);
  }
}

Result<CleanSplit> split_clean(const Dataset& clean, double holdout_fraction,
                               uint64_t seed) {
  const auto holdout = static_cast<int64_t>(holdout_fraction * clean.size());
  if (clean.size() - holdout < 1 || (holdout_fraction > 0 && holdout < 1)) {
    return Status::InvalidArgument("clean set of " + std::to_string(clean.size()) +
                                   " image(s) is too small to hold out " +
                                   std::to_string(holdout_fraction));
  }
  auto gen = at::detail::createCPUGenerator(seed);
  auto order = torch::randperm(clean.size(), gen, torch::kLong);
  return CleanSplit{clean.subset(order.slice(0, holdout)),
                    clean.subset(order.slice(0, 0, holdout))};
}

ResNet18 clone_model(ResNet18& model) {
  ResNet18 copy(model->options());
  (void)load_resnet_state(copy, resnet_state(model));  // same architecture
  copy->to(model->parameters().front().device());
  return copy;
}

double clean_accuracy(ResNet18& model, const Dataset& data, const DefenseContext& ctx) {
  EvalOptions opts;
  opts.normalization = ctx.normalization;
  opts.device = ctx.device;
  return accuracy_percent(model, data, opts);
}

nlohmann::json holdout_report(const std::string& defense, ResNet18& model,
                              const CleanSplit& split, double acc_before,
                              const DefenseContext& ctx) {
  return {{"defense", defense},
          {"holdout_images", split.holdout.size()},
          {"holdout_seed", ctx.split_seed()},
          {"acc_before", acc_before},
          {"acc_after", clean_accuracy(model, split.holdout, ctx)}};
}

}  // namespace fedvar::plugins

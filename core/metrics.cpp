#include "core/metrics.h"

#include <torch/torch.h>

namespace fedvar {

torch::Tensor predict(ResNet18& model, const Dataset& data, const EvalOptions& opts,
                      const TriggerSpec* trigger) {
  torch::NoGradGuard no_grad;
  model->eval();
  model->to(opts.device);
  std::mt19937_64 rng(opts.seed);
  std::vector<torch::Tensor> predictions;
  for (int64_t begin = 0; begin < data.size(); begin += opts.batch_size) {
    const int64_t end = std::min(begin + opts.batch_size, data.size());
    auto x = to_unit_float(data.images.slice(0, begin, end), opts.device);
    if (trigger != nullptr) apply_trigger(*trigger, x, rng);
    predictions.push_back(model->forward(normalize(x, opts.normalization)).argmax(1));
  }
  if (predictions.empty()) return torch::empty({0}, torch::kLong);
  return torch::cat(predictions).to(torch::kCPU);
}

double accuracy_percent(ResNet18& model, const Dataset& data, const EvalOptions& opts) {
  if (data.size() == 0) return 0.0;
  auto correct = predict(model, data, opts).eq(data.labels).sum().item<int64_t>();
  return 100.0 * static_cast<double>(correct) / static_cast<double>(data.size());
}

namespace {

// Share of the non-target images sent to `target`, trigger stamped if given.
double target_rate_percent(ResNet18& model, const Dataset& data,
                           const TriggerSpec* trigger, int64_t target,
                           const EvalOptions& opts) {
  auto keep = data.labels.ne(target).nonzero().squeeze(1);
  if (keep.numel() == 0) return 0.0;
  auto victims = data.subset(keep);
  auto hits = predict(model, victims, opts, trigger).eq(target).sum().item<int64_t>();
  return 100.0 * static_cast<double>(hits) / static_cast<double>(victims.size());
}

}  // namespace

double attack_success_percent(ResNet18& model, const Dataset& data,
                              const TriggerSpec& trigger, int64_t target,
                              const EvalOptions& opts) {
  return target_rate_percent(model, data, &trigger, target, opts);
}

double clean_to_target_percent(ResNet18& model, const Dataset& data, int64_t target,
                               const EvalOptions& opts) {
  return target_rate_percent(model, data, nullptr, target, opts);
}

}  // namespace fedvar

#include "core/metrics.h"

#include <torch/torch.h>

namespace fedvar {
namespace {

torch::Tensor predict_or_throw(ResNet18& model, const Dataset& data,
                               const EvalOptions& opts, const TriggerSpec* trigger) {
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

double accuracy_or_throw(ResNet18& model, const Dataset& data, const EvalOptions& opts) {
  if (data.size() == 0) return 0.0;
  auto correct =
      predict_or_throw(model, data, opts, nullptr).eq(data.labels).sum().item<int64_t>();
  return 100.0 * static_cast<double>(correct) / static_cast<double>(data.size());
}

// Share of the non-target images sent to `target`, trigger stamped if given.
double target_rate_percent(ResNet18& model, const Dataset& data,
                           const TriggerSpec* trigger, int64_t target,
                           const EvalOptions& opts) {
  auto keep = data.labels.ne(target).nonzero().squeeze(1);
  if (keep.numel() == 0) return 0.0;
  auto victims = data.subset(keep);
  auto hits =
      predict_or_throw(model, victims, opts, trigger).eq(target).sum().item<int64_t>();
  return 100.0 * static_cast<double>(hits) / static_cast<double>(victims.size());
}

// f() with a libtorch exception turned into a Status.
template <typename F>
auto guarded(F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    return status_from_exception("evaluation", e);
  }
}

}  // namespace

Result<torch::Tensor> predict(ResNet18& model, const Dataset& data,
                              const EvalOptions& opts, const TriggerSpec* trigger) {
  return guarded([&] { return predict_or_throw(model, data, opts, trigger); });
}

Result<double> accuracy_percent(ResNet18& model, const Dataset& data,
                                const EvalOptions& opts) {
  return guarded([&] { return accuracy_or_throw(model, data, opts); });
}

Result<double> attack_success_percent(ResNet18& model, const Dataset& data,
                                      const TriggerSpec& trigger, int64_t target,
                                      const EvalOptions& opts) {
  return guarded(
      [&] { return target_rate_percent(model, data, &trigger, target, opts); });
}

Result<double> clean_to_target_percent(ResNet18& model, const Dataset& data,
                                       int64_t target, const EvalOptions& opts) {
  return guarded([&] { return target_rate_percent(model, data, nullptr, target, opts); });
}

}  // namespace fedvar

#include "plugins/nad.h"

#include <torch/torch.h>

namespace fedvar::plugins {

Result<NadOptions> NadOptions::from(const Options& options) {
  NadOptions o;
  OptionReader r("nad", options);
  o.teacher.epochs = r.get("teacher_epochs", o.teacher.epochs, 0, 10000);
  o.student.epochs = r.get("epochs", o.student.epochs, 0, 10000);
  o.teacher.lr = o.student.lr = r.get("lr", o.student.lr, 0.0, 10.0);
  o.beta2 = r.get("beta2", o.beta2, 0.0, 1e9);
  o.beta3 = r.get("beta3", o.beta3, 0.0, 1e9);
  o.beta4 = r.get("beta4", o.beta4, 0.0, 1e9);
  o.power = r.get("power", o.power, 0.5, 8.0);
  o.holdout = r.get("holdout", o.holdout, 0.0, 0.9);
  FEDVAR_RETURN_IF_ERROR(r.finish());
  return o;
}

torch::Tensor attention_map(const torch::Tensor& features, double power) {
  auto a = features.abs().pow(power).mean(/*dim=*/1).flatten(1);
  return torch::nn::functional::normalize(
      a, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
}

Result<nlohmann::json> Nad::apply(ResNet18& model, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto split,
                          split_clean(ctx.clean, options_.holdout, ctx.split_seed()));
  const double acc_before = clean_accuracy(model, split.holdout, ctx);
  auto teacher = clone_model(model);
  auto tune = options_.teacher;
  tune.seed = ctx.seed;
  FEDVAR_RETURN_IF_ERROR(fine_tune(teacher, split.tune, ctx, tune, cross_entropy_loss));
  const double teacher_s = seconds_since(start);
  if (ctx.progress) ctx.progress("nad: teacher fine-tuned");
  teacher->eval();
  const double betas[] = {options_.beta2, options_.beta3, options_.beta4};
  const LossFn loss = [&](ResNet18& student, const torch::Tensor& x,
                          const torch::Tensor& y) {
    auto s = student->forward_stages(x);
    std::vector<torch::Tensor> t;
    {
      torch::NoGradGuard no_grad;
      t = teacher->forward_stages(x);
    }
    auto total = torch::nn::functional::cross_entropy(s[4], y);
    for (int l = 0; l < 3; ++l) {  // layer2, layer3, layer4 = stages 1..3
      auto diff = attention_map(s[l + 1], options_.power) -
                  attention_map(t[l + 1], options_.power);
      total = total + betas[l] * diff.norm(2, /*dim=*/1).mean();
    }
    return total;
  };
  tune = options_.student;
  tune.seed = ctx.seed + 1;
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, loss));
  const double total = seconds_since(start);
  auto report = holdout_report(name(), model, split, acc_before, ctx);
  report["pruned"] = nlohmann::json::object();
  report["seconds"] = {
      {"teacher", teacher_s}, {"distill", total - teacher_s}, {"total", total}};
  return report;
}

}  // namespace fedvar::plugins

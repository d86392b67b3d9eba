#include "plugins/nad.h"

#include <torch/torch.h>

#include "core/model_io.h"
#include "core/stopwatch.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {

const OptionTable<NadOptions>& NadOptions::table() {
  using O = NadOptions;
  static const OptionTable<O> table =
      OptionTable<O>("nad")
          .integer("teacher_epochs", &O::teacher_epochs, 0, 10000,
                   "epochs fine-tuning the teacher")
          .integer("epochs", &O::epochs, 0, 10000, "epochs distilling into the student")
          .real("lr", &O::lr, 0.0, 10.0, "learning rate of both")
          .real("beta2", &O::beta2, 0.0, 1e9, "attention loss weight at layer2")
          .real("beta3", &O::beta3, 0.0, 1e9, "attention loss weight at layer3")
          .real("beta4", &O::beta4, 0.0, 1e9, "attention loss weight at layer4")
          .real("power", &O::power, 0.5, 8.0, "p of the attention map")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out");
  return table;
}

torch::Tensor attention_map(const torch::Tensor& features, double power) {
  auto a = features.abs().pow(power).mean(/*dim=*/1).flatten(1);
  return torch::nn::functional::normalize(
      a, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
}

Result<nlohmann::json> Nad::purify(ResNet18& model, const CleanSplit& split, double,
                                   const DefenseContext& ctx) {
  const auto start = Clock::now();
  auto teacher = clone_model(model);
  TrainOptions tune = fine_tune_options(options_.teacher_epochs);
  tune.lr = options_.lr;
  tune.seed = ctx.seed;
  FEDVAR_RETURN_IF_ERROR(fine_tune(teacher, split.tune, ctx, tune));
  const double teacher_s = seconds_since(start);
  ctx.say("nad: teacher fine-tuned");
  const double betas[] = {options_.beta2, options_.beta3, options_.beta4};
  TrainHooks hooks;
  hooks.loss = [&](ResNet18& student, const torch::Tensor& x, const torch::Tensor& y) {
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
    return BatchLoss{total, s[4]};
  };
  tune.epochs = options_.epochs;
  tune.seed = ctx.seed + 1;
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, hooks));
  return nlohmann::json{
      {"pruned", nlohmann::json::object()},
      {"seconds",
       {{"teacher", teacher_s}, {"distill", seconds_since(start) - teacher_s}}}};
}

}  // namespace fedvar::plugins

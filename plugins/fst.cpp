#include "plugins/fst.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "core/augment.h"
#include "core/stopwatch.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {

const OptionTable<FstOptions>& FstOptions::table() {
  using O = FstOptions;
  static const OptionTable<O> table =
      OptionTable<O>("fst")
          .integer("epochs", &O::epochs, 0, 10000,
                   "epochs of fine-tuning on the clean set")
          .real("lr", &O::lr, 0.0, 10.0, "learning rate (SGD, momentum 0.9, no decay)")
          .real(
              "alpha", &O::alpha, 0.0, 100.0,
              "weight of the penalty: inner product of the new and the old head weights")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .flag("cosine", &O::cosine, "anneal the lr to 0 along a half cosine")
          .flag("augment", &O::augment, "shift by up to 2 pixels and flip each image")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out");
  return table;
}

torch::Tensor head_alignment(const torch::Tensor& weight, const torch::Tensor& original) {
  return (weight * original.detach()).sum();
}

void project_to_norm(torch::Tensor& weight, double norm) {
  torch::NoGradGuard no_grad;
  const double current = weight.norm().item<double>();
  if (current > 0.0) weight.mul_(norm / current);
}

void reinit_head(torch::Tensor& weight, torch::Tensor& bias, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
  auto draw = [&](torch::Tensor& t) {
    auto values = torch::empty(t.sizes(), torch::kFloat).uniform_(-bound, bound, gen);
    t.copy_(values);
  };
  draw(weight);
  draw(bias);
}

double tensor_cosine(const torch::Tensor& a, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  auto fa = a.flatten().to(torch::kDouble);
  auto fb = b.flatten().to(torch::kDouble);
  const double denom = (fa.norm() * fb.norm()).item<double>();
  return denom > 0.0 ? (fa * fb).sum().item<double>() / denom : 0.0;
}

Result<nlohmann::json> Fst::purify(ResNet18& model, const CleanSplit& split, double,
                                   const DefenseContext& ctx) {
  const auto start = Clock::now();
  auto params = model->named_parameters();
  torch::Tensor weight = params["fc.weight"];
  torch::Tensor bias = params["fc.bias"];
  const torch::Tensor original = weight.detach().clone();
  const double norm = original.norm().item<double>();
  reinit_head(weight, bias, ctx.seed);
  project_to_norm(weight, norm);  // ft.py projects only after the first step
  ctx.say("fst: classifier head re-initialised (norm " + std::to_string(norm) + ")");

  TrainOptions tune = fine_tune_options(options_.epochs);
  tune.lr = options_.lr;
  tune.weight_decay = 0.0;  // ft.py's SGD has none
  tune.batch_size = options_.batch_size;
  tune.cosine = options_.cosine;
  tune.seed = ctx.seed;
  const double alpha = options_.alpha;
  TrainHooks hooks;
  if (options_.augment) hooks.transform = augment_transform();
  hooks.loss = [&](ResNet18& m, const torch::Tensor& x, const torch::Tensor& y) {
    auto logits = m->forward(x);
    auto loss = torch::nn::functional::cross_entropy(logits, y) +
                alpha * head_alignment(weight, original);
    return BatchLoss{loss, logits};
  };
  hooks.after_step = [&] { project_to_norm(weight, norm); };
  hooks.on_epoch = [&](const EpochStats& s) {
    std::ostringstream line;
    line << "fst: epoch " << s.epoch << "/" << tune.epochs << " loss " << s.loss
         << " train ACC " << s.train_acc << " head cosine "
         << tensor_cosine(weight, original);
    ctx.say(line.str());
  };
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, hooks));
  return nlohmann::json{{"epochs", tune.epochs},
                        {"head_norm", norm},
                        {"head_cosine", tensor_cosine(weight, original)},
                        {"pruned", nlohmann::json::object()},
                        {"seconds", {{"fine_tune", seconds_since(start)}}}};
}

}  // namespace fedvar::plugins

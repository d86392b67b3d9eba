#include "plugins/fine_pruning.h"

#include <torch/torch.h>

#include "core/model_io.h"
#include "core/stopwatch.h"
#include "plugins/channel_mask.h"
#include "plugins/channel_stats.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {
namespace {

std::vector<int64_t> first(const torch::Tensor& order, int64_t n) {
  auto head = order.slice(0, 0, n).contiguous();
  return {head.data_ptr<int64_t>(), head.data_ptr<int64_t>() + n};
}

}  // namespace

const OptionTable<FinePruningOptions>& FinePruningOptions::table() {
  using O = FinePruningOptions;
  static const OptionTable<O> table =
      OptionTable<O>("fine-pruning")
          .real("acc_drop", &O::acc_drop, 0.0, 100.0,
                "prune until holdout ACC drops by more than this many points")
          .real("step_fraction", &O::step_fraction, 0.001, 1.0,
                "share of the last conv's channels pruned between two ACC checks")
          .integer("epochs", &O::epochs, 0, 10000, "fine-tuning epochs after pruning")
          .real("lr", &O::lr, 0.0, 10.0, "fine-tuning learning rate")
          .real("holdout", &O::holdout, 0.01, 0.9, "share of the clean set held out");
  return table;
}

Result<nlohmann::json> FinePruning::purify(ResNet18& model, const CleanSplit& split,
                                           double acc_before, const DefenseContext& ctx) {
  const auto start = Clock::now();
  auto convs = model->conv_layers();
  const size_t last = convs.size() - 1;
  auto activation = measure_channels(model, split.tune, ctx.normalization, ctx.device,
                                     {last}, {ChannelStat::kMeanActivation, 0.9, 128})[0];
  auto order = activation.argsort();  // least active first
  const int64_t channels = order.size(0);
  const auto step = std::max<int64_t>(1, options_.step_fraction * channels);
  int64_t kept = 0;
  for (int64_t n = step; n < channels; n += step) {
    auto trial = clone_model(model);
    ChannelMask trial_mask;
    trial_mask.purify(trial->conv_layers()[last], first(order, n));
    FEDVAR_ASSIGN_OR_RETURN(const double acc, clean_accuracy(trial, split.holdout, ctx));
    if (acc_before - acc > options_.acc_drop) break;
    kept = n;
  }
  ChannelMask mask;
  mask.purify(convs[last], first(order, kept));
  const double prune_s = seconds_since(start);
  ctx.say("fine-pruning: pruned " + std::to_string(kept) + "/" +
          std::to_string(channels) + " channels of " + convs[last].name);
  TrainOptions tune = fine_tune_options(options_.epochs);
  tune.lr = options_.lr;
  tune.seed = ctx.seed;
  TrainHooks hooks;
  hooks.after_step = [&] { mask.apply(); };
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, hooks));
  return nlohmann::json{
      {"pruned", mask.to_json()},
      {"pruned_total", mask.total()},
      {"seconds", {{"prune", prune_s}, {"fine_tune", seconds_since(start) - prune_s}}}};
}

}  // namespace fedvar::plugins

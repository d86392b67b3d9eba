#include "plugins/fine_pruning.h"

#include <torch/torch.h>

#include "plugins/channel_mask.h"
#include "plugins/channel_stats.h"

namespace fedvar::plugins {

Result<FinePruningOptions> FinePruningOptions::from(const Options& options) {
  FinePruningOptions o;
  OptionReader r("fine-pruning", options);
  o.acc_drop = r.get("acc_drop", o.acc_drop, 0.0, 100.0);
  o.step_fraction = r.get("step_fraction", o.step_fraction, 0.001, 1.0);
  o.tune.epochs = r.get("epochs", o.tune.epochs, 0, 10000);
  o.tune.lr = r.get("lr", o.tune.lr, 0.0, 10.0);
  o.holdout = r.get("holdout", o.holdout, 0.01, 0.9);
  FEDVAR_RETURN_IF_ERROR(r.finish());
  return o;
}

Result<nlohmann::json> FinePruning::apply(ResNet18& model, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto split,
                          split_clean(ctx.clean, options_.holdout, ctx.split_seed()));
  const double acc_before = clean_accuracy(model, split.holdout, ctx);
  auto convs = model->conv_layers();
  const size_t last = convs.size() - 1;
  auto activation = measure_channels(model, split.tune, ctx.normalization, ctx.device,
                                     {last}, {ChannelStat::kMeanActivation, 0.9, 128})[0];
  auto order = activation.argsort();  // least active first
  const int64_t channels = order.size(0);
  const auto step = std::max<int64_t>(1, options_.step_fraction * channels);
  ChannelMask mask;
  int64_t kept = 0;
  for (int64_t n = step; n < channels; n += step) {
    auto trial = clone_model(model);
    ChannelMask trial_mask;
    auto prune = order.slice(0, 0, n);
    trial_mask.purify(
        trial->conv_layers()[last],
        std::vector<int64_t>(prune.data_ptr<int64_t>(), prune.data_ptr<int64_t>() + n));
    if (acc_before - clean_accuracy(trial, split.holdout, ctx) > options_.acc_drop) break;
    kept = n;
  }
  auto prune = order.slice(0, 0, kept).contiguous();
  mask.purify(convs[last], std::vector<int64_t>(prune.data_ptr<int64_t>(),
                                                prune.data_ptr<int64_t>() + kept));
  const double prune_s = seconds_since(start);
  if (ctx.progress) {
    ctx.progress("fine-pruning: pruned " + std::to_string(kept) + "/" +
                 std::to_string(channels) + " channels of " + convs[last].name);
  }
  auto tune = options_.tune;
  tune.seed = ctx.seed;
  FEDVAR_RETURN_IF_ERROR(
      fine_tune(model, split.tune, ctx, tune, cross_entropy_loss, [&] { mask.apply(); }));
  const double total = seconds_since(start);
  auto report = holdout_report(name(), model, split, acc_before, ctx);
  report["pruned"] = mask.to_json();
  report["pruned_total"] = mask.total();
  report["seconds"] = {
      {"prune", prune_s}, {"fine_tune", total - prune_s}, {"total", total}};
  return report;
}

}  // namespace fedvar::plugins

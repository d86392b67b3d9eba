#include "plugins/fine_tuning.h"

namespace fedvar::plugins {

Result<FineTuningOptions> FineTuningOptions::from(const Options& options) {
  FineTuningOptions o;
  OptionReader r("fine-tuning", options);
  o.tune.epochs = r.get("epochs", o.tune.epochs, 0, 10000);
  o.tune.lr = r.get("lr", o.tune.lr, 0.0, 10.0);
  o.tune.batch_size = r.get("batch_size", static_cast<int>(o.tune.batch_size), 1, 65536);
  o.tune.cosine = r.get("cosine", o.tune.cosine ? 1 : 0, 0, 1) == 1;
  o.tune.augment = r.get("augment", o.tune.augment ? 1 : 0, 0, 1) == 1;
  o.recalibrate = r.get("recalibrate", o.recalibrate ? 1 : 0, 0, 1) == 1;
  o.holdout = r.get("holdout", o.holdout, 0.0, 0.9);
  FEDVAR_RETURN_IF_ERROR(r.finish());
  return o;
}

Result<nlohmann::json> FineTuning::apply(ResNet18& model, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto split,
                          split_clean(ctx.clean, options_.holdout, ctx.split_seed()));
  const double acc_before = clean_accuracy(model, split.holdout, ctx);
  auto tune = options_.tune;
  tune.seed = ctx.seed;
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, cross_entropy_loss));
  if (options_.recalibrate)
    recalibrate_batchnorm(model, split.tune, ctx, tune.batch_size);
  if (ctx.progress)
    ctx.progress("fine-tuning: " + std::to_string(tune.epochs) + " epochs");
  const double seconds = seconds_since(start);
  auto report = holdout_report(name(), model, split, acc_before, ctx);
  report["epochs"] = tune.epochs;
  report["augment"] = tune.augment;
  report["pruned"] = nlohmann::json::object();
  report["seconds"] = {{"fine_tune", seconds}, {"total", seconds}};
  return report;
}

}  // namespace fedvar::plugins

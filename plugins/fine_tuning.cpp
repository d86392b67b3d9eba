#include "plugins/fine_tuning.h"

#include "core/augment.h"
#include "core/stopwatch.h"
#include "plugins/batchnorm_stats.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {

const OptionTable<FineTuningOptions>& FineTuningOptions::table() {
  using O = FineTuningOptions;
  static const OptionTable<O> table =
      OptionTable<O>("fine-tuning")
          .integer("epochs", &O::epochs, 0, 10000, "epochs of SGD on the clean set")
          .real("lr", &O::lr, 0.0, 10.0, "learning rate")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .flag("cosine", &O::cosine, "anneal the lr to 0 along a half cosine")
          .flag("augment", &O::augment, "shift by up to 2 pixels and flip each image")
          .flag("recalibrate", &O::recalibrate,
                "re-estimate BatchNorm statistics on the clean set at the end")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out");
  return table;
}

Result<nlohmann::json> FineTuning::purify(ResNet18& model, const CleanSplit& split,
                                          double, const DefenseContext& ctx) {
  const auto start = Clock::now();
  TrainOptions tune = fine_tune_options(options_.epochs);
  tune.lr = options_.lr;
  tune.batch_size = options_.batch_size;
  tune.cosine = options_.cosine;
  tune.seed = ctx.seed;
  TrainHooks hooks;
  if (options_.augment) hooks.transform = augment_transform();
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, split.tune, ctx, tune, hooks));
  if (options_.recalibrate)
    recalibrate_batchnorm(model, split.tune, ctx, tune.batch_size);
  ctx.say("fine-tuning: " + std::to_string(tune.epochs) + " epochs");
  return nlohmann::json{{"epochs", tune.epochs},
                        {"pruned", nlohmann::json::object()},
                        {"seconds", {{"fine_tune", seconds_since(start)}}}};
}

}  // namespace fedvar::plugins

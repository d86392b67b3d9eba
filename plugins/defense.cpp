#include "plugins/defense.h"

#include "core/metrics.h"
#include "core/stopwatch.h"

namespace fedvar::plugins {

Result<double> clean_accuracy(ResNet18& model, const Dataset& data,
                              const DefenseContext& ctx) {
  EvalOptions opts;
  opts.normalization = ctx.normalization;
  opts.device = ctx.device;
  return accuracy_percent(model, data, opts);
}

Result<nlohmann::json> Defense::apply(ResNet18& model, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_RETURN_IF_ERROR(ctx.normalization.check_channels(ctx.clean.channels()));
  FEDVAR_ASSIGN_OR_RETURN(auto split,
                          split_clean(ctx.clean, holdout(), ctx.split_seed()));
  try {
    model->to(ctx.device);
    FEDVAR_ASSIGN_OR_RETURN(const double acc_before,
                            clean_accuracy(model, split.holdout, ctx));
    FEDVAR_ASSIGN_OR_RETURN(auto report, purify(model, split, acc_before, ctx));
    model->eval();
    report["defense"] = name();
    report["holdout_images"] = split.holdout.size();
    report["holdout_seed"] = ctx.split_seed();
    report["acc_before"] = acc_before;
    FEDVAR_ASSIGN_OR_RETURN(report["acc_after"],
                            clean_accuracy(model, split.holdout, ctx));
    report["options"] = options();
    report["seconds"]["total"] = seconds_since(start);
    return report;
  } catch (const std::exception& e) {
    return status_from_exception(name(), e);
  }
}

}  // namespace fedvar::plugins

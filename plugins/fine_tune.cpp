#include "plugins/fine_tune.h"

namespace fedvar::plugins {

Status fine_tune(ResNet18& model, const Dataset& data, const DefenseContext& ctx,
                 TrainOptions opts, TrainHooks hooks) {
  if (data.size() == 0) return Status::InvalidArgument("no clean images to fine-tune on");
  opts.normalization = ctx.normalization;
  opts.device = ctx.device;
  auto history = train_model(model, data, opts, hooks);
  model->eval();
  return history.status();
}

TrainOptions fine_tune_options(int epochs) {
  TrainOptions opts;
  opts.epochs = epochs;
  return opts;
}

}  // namespace fedvar::plugins

// A defense's training on the defender's clean set: core/trainer.h's loop
// with the context's normalization and device.
#pragma once

#include "core/trainer.h"
#include "plugins/defense.h"

namespace fedvar::plugins {

// Trains `model` on `data` with `opts`' schedule (its normalization and
// device replaced by the context's) and `hooks` (loss, after_step,
// transform). Ends in eval mode. Errors: as train_model's.
Status fine_tune(ResNet18& model, const Dataset& data, const DefenseContext& ctx,
                 TrainOptions opts, TrainHooks hooks = {});

// The defaults of a defense's fine-tuning: `epochs` at lr 0.01 (the paper's
// SGD, 4.1.5), batch 128, momentum 0.9, weight decay 5e-4.
TrainOptions fine_tune_options(int epochs);

}  // namespace fedvar::plugins

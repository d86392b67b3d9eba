// BatchNorm running statistics: saved, put back, or re-estimated on the clean
// set. VarDefense measures channel variance through the statistics the model
// came with (estimated on the training data, trigger included), and can
// re-estimate them after purifying (docs/vardefense.md).
#pragma once

#include <torch/types.h>

#include <vector>

#include "core/dataset.h"
#include "core/resnet.h"
#include "plugins/defense.h"

namespace fedvar::plugins {

// The running mean and variance of every BatchNorm, in conv_layers() order.
struct BatchNormStats {
  std::vector<torch::Tensor> mean, var;
};
BatchNormStats batchnorm_stats(ResNet18& model);  // copies
void set_batchnorm_stats(ResNet18& model, const BatchNormStats& stats);

// Re-estimates every BatchNorm's running mean and variance on `data`: one
// pass in train mode without gradients, averaged over the pass (cumulative,
// not exponential). Ends in eval mode.
void recalibrate_batchnorm(ResNet18& model, const Dataset& data,
                           const DefenseContext& ctx, int64_t batch_size);

}  // namespace fedvar::plugins

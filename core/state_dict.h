// A model's tensors by (torchvision) name, and the one check that two of them
// have the same layout: what FedAvg, the protocol's update validation and a
// client's model-replacement scaling all require.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

#include "core/status.h"

namespace fedvar {

using StateDict = std::map<std::string, torch::Tensor>;

// Ok when `update` has exactly `reference`'s names, and each tensor its
// dtype and shape; else kInvalidArgument naming the first tensor that differs
// ("missing tensor 'x'", "unexpected tensor 'x'", "tensor 'x' has shape ...").
Status check_same_layout(const StateDict& update, const StateDict& reference);

// Ok when every BatchNorm running variance (a tensor named *running_var) is
// >= 0; else kInvalidArgument naming it (what a model-replacement update that
// scaled its statistics sends).
Status check_batchnorm_statistics(const StateDict& state);

// Whether `name` is a BatchNorm buffer in torchvision's naming (running_mean,
// running_var, num_batches_tracked): state, not a trainable parameter.
bool is_buffer_name(const std::string& name);

}  // namespace fedvar

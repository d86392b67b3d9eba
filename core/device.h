// Choosing the device that every tensor op of a run follows.
#pragma once

#include <torch/types.h>

#include <string>

#include "core/status.h"

namespace fedvar {

// "auto" = CUDA when torch::cuda::is_available(), else CPU; "cpu"; "cuda" or
// "cuda:N". kUnavailable for cuda when no CUDA device is present,
// kInvalidArgument for any other text or an N beyond the devices there are.
Result<torch::Device> resolve_device(const std::string& spec);

}  // namespace fedvar

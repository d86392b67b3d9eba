// A defense over a state dict: the boundary that the C library, the Python
// package, the defend service and the server's after-aggregation hook share.
// The caller gives a ResNet state dict in torchvision's names (any number of
// classes and input channels; the stem and width are read from the shapes)
// and the clean set; the network class is built behind this call.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

#include "core/state_dict.h"
#include "core/status.h"
#include "plugins/defense.h"

namespace fedvar::plugins {

struct Purified {
  StateDict state;        // the input's names, float32/int64 on the CPU
  nlohmann::json report;  // Defense::apply's report
};

// Runs `defense` on the model `state` describes, with ctx's clean set,
// normalization, device and seed; `state` is not modified. kInvalidArgument
// when the state dict is not a ResNet18 (names the tensor), the clean images'
// channels differ from the model's, a label is not one of its classes, or the
// normalization does not fit the channels.
Result<Purified> purify_state(Defense& defense, const StateDict& state,
                              const DefenseContext& ctx);

// The checks above on the clean set against a model of `in_channels` inputs
// and `num_classes` outputs.
Status check_clean_fits(const Dataset& clean, int64_t in_channels, int64_t num_classes);

}  // namespace fedvar::plugins

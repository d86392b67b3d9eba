// The defender's clean set cut in two: `tune` for the defense, `holdout` to
// measure clean ACC before and after (never trained on).
#pragma once

#include "core/dataset.h"

#include <cstdint>

#include "core/status.h"

namespace fedvar::plugins {

struct CleanSplit {
  Dataset tune;
  Dataset holdout;
};

// Deterministic by seed. kInvalidArgument when the set is too small to hold
// out `holdout_fraction` and keep one image to tune on.
Result<CleanSplit> split_clean(const Dataset& clean, double holdout_fraction,
                               uint64_t seed);

}  // namespace fedvar::plugins

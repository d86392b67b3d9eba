// A DefenseContext over random images and labels, for defense tests that
// check mechanics (masks, schedules, option handling), not quality.
#pragma once

#include <torch/torch.h>

#include "plugins/defense.h"

namespace fedvar::testing {

inline plugins::DefenseContext random_context(int64_t images) {
  plugins::DefenseContext ctx;
  ctx.clean = Dataset{torch::randint(0, 255, {images, 1, 28, 28}).to(torch::kUInt8),
                      torch::randint(0, 10, {images}, torch::kLong)};
  ctx.normalization = {{0.3}, {0.35}};
  return ctx;
}

}  // namespace fedvar::testing

#include "plugins/clean_split.h"

#include <torch/torch.h>

namespace fedvar::plugins {

Result<CleanSplit> split_clean(const Dataset& clean, double holdout_fraction,
                               uint64_t seed) {
  const auto holdout = static_cast<int64_t>(holdout_fraction * clean.size());
  if (clean.size() - holdout < 1 || (holdout_fraction > 0 && holdout < 1)) {
    return Status::InvalidArgument("clean set of " + std::to_string(clean.size()) +
                                   " image(s) is too small to hold out " +
                                   std::to_string(holdout_fraction));
  }
  auto gen = at::detail::createCPUGenerator(seed);
  auto order = torch::randperm(clean.size(), gen, torch::kLong);
  return CleanSplit{clean.subset(order.slice(0, holdout)),
                    clean.subset(order.slice(0, 0, holdout))};
}

}  // namespace fedvar::plugins

// The defense plugin interface: one small virtual class (Flower's Strategy in
// spirit). A defense gets a model someone else trained and the defender's
// small clean data set, changes the model in place and says what it did.
// The math lives in free functions over tensors; no sockets here.
#pragma once

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"
#include "core/status.h"

namespace fedvar::plugins {

// What every defense works with. The defender knows nothing of the trigger
// or the target label.
struct DefenseContext {
  Dataset clean;                // the defender's clean images (uint8)
  Normalization normalization;  // the model's input normalization
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;  // shuffling, and the holdout split unless holdout_seed is set
  // Progress lines (purification steps, epochs); may be empty.
  std::function<void(const std::string&)> progress;
  // The seed of the clean set's tune/holdout split. A federation sets it once
  // for the run while `seed` changes per round, so that no round's hook
  // trains on images another round's report holds out.
  std::optional<uint64_t> holdout_seed;
  uint64_t split_seed() const { return holdout_seed.value_or(seed); }
};

class Defense {
 public:
  virtual ~Defense() = default;
  // The registry name, e.g. "vardefense".
  virtual std::string name() const = 0;
  // Purifies `model` in place (it ends on ctx.device in eval mode). Returns a
  // JSON report: what was pruned per layer, clean ACC before/after on a
  // held-out slice of the clean set, seconds per phase. On error the model
  // may be partly changed.
  virtual Result<nlohmann::json> apply(ResNet18& model, const DefenseContext& ctx) = 0;
};

}  // namespace fedvar::plugins

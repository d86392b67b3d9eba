// The defense plugin interface: one small class (Flower's Strategy in
// spirit). A defense gets a model someone else trained and the defender's
// small clean data set, changes the model in place and says what it did.
// Defense::apply does what every defense shares (the clean set's split, clean
// ACC before and after, timing, turning library exceptions into a Status);
// a defense implements purify(). The math lives in free functions over
// tensors; no sockets here.
#pragma once

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"
#include "core/status.h"
#include "plugins/clean_split.h"
#include "plugins/option_table.h"

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
  void say(const std::string& line) const {
    if (progress) progress(line);
  }
};

class Defense {
 public:
  virtual ~Defense() = default;
  // The registry name, e.g. "vardefense".
  virtual std::string name() const = 0;

  // Purifies `model` in place; it ends on ctx.device in eval mode. Returns
  // the defense's JSON report plus {"defense", "holdout_images",
  // "holdout_seed", "acc_before", "acc_after", "options", "seconds": {...,
  // "total"}}. Errors (a clean set too small to split, a libtorch failure
  // such as out-of-memory) come back as a Status; the model may then be
  // partly changed. Never throws.
  Result<nlohmann::json> apply(ResNet18& model, const DefenseContext& ctx);

 protected:
  // The share of the clean set held out for the ACC checks.
  virtual double holdout() const = 0;
  // The options this instance runs with (OptionTable::echo).
  virtual nlohmann::json options() const = 0;
  // The defense itself, trained on split.tune; `acc_before` is the holdout
  // ACC of the model as given. May throw libtorch's exceptions.
  virtual Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                        double acc_before, const DefenseContext& ctx) = 0;

 private:
  friend class DefenseChain;  // reads its steps' holdout share
};

// A defense whose options struct OptionsT has a table() and a `holdout`
// share: the holdout and the report's options echo come from them.
template <typename OptionsT>
class DefenseWith : public Defense {
 public:
  explicit DefenseWith(OptionsT options) : options_(std::move(options)) {}

 protected:
  double holdout() const override { return options_.holdout; }
  nlohmann::json options() const override { return OptionsT::table().echo(options_); }

  OptionsT options_;
};

// Clean ACC (percent) of `model` on `data` with the context's normalization
// and device.
Result<double> clean_accuracy(ResNet18& model, const Dataset& data,
                              const DefenseContext& ctx);

}  // namespace fedvar::plugins

// Fine-tuning (Liu et al. 2017, "Neural Trojans"): plain SGD with
// cross-entropy on the clean set; the baseline every defense must beat.
#pragma once

#include "plugins/defense.h"
#include "plugins/fine_tune.h"
#include "plugins/options.h"

namespace fedvar::plugins {

struct FineTuningOptions {
  // 15 epochs = VarDefense's default total; lr annealed like VarDefense's
  // final epochs, so that both recover clean ACC on the same footing.
  FineTuneOptions tune = [] {
    FineTuneOptions t;
    t.epochs = 15;
    t.cosine = true;
    return t;
  }();
  bool recalibrate = false;  // re-estimate BN statistics at the end (as VarDefense can)
  double holdout = 0.1;
  static Result<FineTuningOptions> from(const Options& options);
};

class FineTuning : public Defense {
 public:
  explicit FineTuning(FineTuningOptions options) : options_(options) {}
  std::string name() const override { return "fine-tuning"; }
  Result<nlohmann::json> apply(ResNet18& model, const DefenseContext& ctx) override;

 private:
  FineTuningOptions options_;
};

}  // namespace fedvar::plugins

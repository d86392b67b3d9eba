// Fine-tuning (Liu et al. 2017, "Neural Trojans"): plain SGD with
// cross-entropy on the clean set; the baseline every defense must beat.
#pragma once

#include "core/trainer.h"

#include <cstdint>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct FineTuningOptions {
  int epochs = 15;           // VarDefense's default total
  double lr = 0.01;          // the paper's SGD setting (4.1.5)
  int64_t batch_size = 128;  // the paper's setting
  bool cosine = true;        // anneal lr to 0, like VarDefense's final epochs
  bool augment = false;      // shift and flip (core/augment.h), BackdoorBench's
  bool recalibrate = false;  // re-estimate BN statistics at the end
  double holdout = 0.1;      // share of the clean set kept for ACC checks
  static const OptionTable<FineTuningOptions>& table();
};

class FineTuning : public DefenseWith<FineTuningOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "fine-tuning"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

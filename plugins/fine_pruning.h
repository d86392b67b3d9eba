// Fine-pruning (Liu, Dolan-Gavitt, Garg, RAID 2018): rank the channels of the
// last conv layer by mean activation on clean data and prune them in
// increasing order until holdout ACC has dropped by more than `acc_drop`
// points (the last pruning within the drop is kept), then fine-tune.
#pragma once

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct FinePruningOptions {
  double acc_drop = 4.0;        // the paper stops at a 4% drop
  double step_fraction = 0.05;  // channels pruned between two ACC checks
  int epochs = 10;              // fine-tuning after the pruning
  double lr = 0.01;
  double holdout = 0.1;
  static const OptionTable<FinePruningOptions>& table();
};

class FinePruning : public DefenseWith<FinePruningOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "fine-pruning"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

// VarDefense (Fan, Du, Liu, Guo: "VarDefense: Variance-Based Defense against
// Poison Attack", 2021), sections 3.5-3.6: score each output channel of the
// last 2n residual-path convs by its variance on clean data (a momentum
// average over mini-batches), purify the lowest-scoring share of each layer
// under a threshold that rises step by step, and fine-tune with Eq. 1
// (CE + ||w||_1 / alpha). Purified channels stay zero, so the result is a
// plain ResNet18.
// Where we differ from the paper, and why (each choice with the measurement
// that decided it and the command that reproduces it): docs/vardefense.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct VarDefenseOptions {
  // A recipe that sets the defaults of the options after it; options given
  // with a preset override it. none: the defaults below. federated: the
  // every-round hook of a federation (restore_norms=1, final_epochs=20).
  // one-shot: one purification of a well-trained model, pruning without
  // training (share 3-6-9 %, recalibrate=1, no epochs).
  std::string preset = "none";
  int layers = 8;              // n: purify the last 2n residual-path convs
  double alpha = 300;          // Eq. 1: loss = CE + ||w||_1 / alpha
  double acc_budget = -1;      // >= 0: raise alpha till holdout ACC is within P points
  double share_start = 0.1;    // share of each layer purified at the first step
  double share_max = 0.15;     // ... and at the last
  int share_steps = 5;         // steps from share_start to share_max
  int step_epochs = 1;         // fine-tuning epochs after each step
  int final_epochs = 10;       // fine-tuning epochs after the last step (cosine lr)
  double lr = 0.02;            // SGD (paper 4.1.5: 0.01)
  int64_t batch_size = 128;    // the paper's
  double holdout = 0.1;        // share of the clean set kept for ACC checks
  bool recalibrate = false;    // re-estimate BN statistics on the clean set
  bool restore_norms = false;  // give filters back their norms at the end
  bool standardize = true;     // 0: the paper's relu(bn(conv)) score
  static const OptionTable<VarDefenseOptions>& table();
};

// The convs VarDefense purifies: indices into model->conv_layers() of the
// last 2n residual-path convs, in forward order.
std::vector<size_t> purified_layer_indices(ResNet18& model, int layers);

class VarDefense : public DefenseWith<VarDefenseOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "vardefense"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

// Neural Attention Distillation (Li et al., ICLR 2021). The teacher is the
// backdoored model fine-tuned on the clean set; the student (the backdoored
// model itself) is then trained with cross-entropy plus the attention
// distillation loss at the outputs of layer2, layer3 and layer4:
//   attention(f) = normalize(flatten(mean over channels of |f|^p)), p = 2
//   loss = CE + sum_l beta_l * || attention(f_s,l) - attention(f_t,l) ||_2
// with NAD's betas for ResNets (500, 1000, 1000).
#pragma once

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct NadOptions {
  int teacher_epochs = 10;  // fine-tuning the teacher
  int epochs = 10;          // distilling into the student
  double lr = 0.01;         // both
  double beta2 = 500, beta3 = 1000, beta4 = 1000;
  double power = 2.0;
  double holdout = 0.1;
  static const OptionTable<NadOptions>& table();
};

// NAD's attention map of features [B, C, H, W]: [B, H*W], unit L2 rows.
torch::Tensor attention_map(const torch::Tensor& features, double power);

class Nad : public DefenseWith<NadOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "nad"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

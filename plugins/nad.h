// Neural Attention Distillation (Li et al., ICLR 2021). The teacher is the
// backdoored model fine-tuned on the clean set; the student (the backdoored
// model itself) is then trained with cross-entropy plus the attention
// distillation loss at the outputs of layer2, layer3 and layer4:
//   attention(f) = normalize(flatten(mean over channels of |f|^p)), p = 2
//   loss = CE + sum_l beta_l * || attention(f_s,l) - attention(f_t,l) ||_2
// with NAD's betas for ResNets (500, 1000, 1000).
#pragma once

#include "plugins/defense.h"
#include "plugins/fine_tune.h"
#include "plugins/options.h"

namespace fedvar::plugins {

struct NadOptions {
  FineTuneOptions teacher{/*epochs=*/10};
  FineTuneOptions student{/*epochs=*/10};
  double beta2 = 500, beta3 = 1000, beta4 = 1000;
  double power = 2.0;
  double holdout = 0.1;
  static Result<NadOptions> from(const Options& options);
};

// NAD's attention map of features [B, C, H, W]: [B, H*W], unit L2 rows.
torch::Tensor attention_map(const torch::Tensor& features, double power);

class Nad : public Defense {
 public:
  explicit Nad(NadOptions options) : options_(options) {}
  std::string name() const override { return "nad"; }
  Result<nlohmann::json> apply(ResNet18& model, const DefenseContext& ctx) override;

 private:
  NadOptions options_;
};

}  // namespace fedvar::plugins

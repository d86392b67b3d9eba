// Feature Shift Tuning (Min, Qin, Shen, Cheng, "Towards Stable Backdoor
// Purification through Feature Shift Tuning", NeurIPS 2023; code:
// github.com/AISafety-HKUST/stable_backdoor_purification, fine_tune/ft.py
// --ft_mode fst). The classifier head (fc) is re-initialised, then the whole
// network is fine-tuned on the clean set with
//   loss = CE + alpha * <W, W_orig>     (sum over the entries, as ft.py)
// where W is the new head's weight and W_orig the backdoored head's; after
// every step W is scaled back to ||W_orig|| (Frobenius), so the penalty can
// only be lowered by turning W away from W_orig: the features shift away from
// the ones the backdoored head read. Trigger-agnostic; no pruning.
#pragma once

#include <torch/types.h>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct FstOptions {
  int epochs = 10;           // ft.py's README command (--epochs 10)
  double lr = 0.01;          // README command (--lr 0.01)
  double alpha = 0.2;        // ft.py's --alpha default (README's example: 0.1)
  int64_t batch_size = 128;  // ft.py's --batch_size default
  bool cosine = true;        // ft.py anneals along a cosine (per epoch; here per step)
  bool augment = false;      // shift and flip (core/augment.h), as fine-tuning's option
  double holdout = 0.1;      // share of the clean set kept for ACC checks
  static const OptionTable<FstOptions>& table();
};

// FST's penalty: the sum of the entries of weight * original (their inner
// product). `original` is a constant; the result is a scalar with weight's
// gradient.
torch::Tensor head_alignment(const torch::Tensor& weight, const torch::Tensor& original);

// Scales `weight` in place, outside autograd, so that its Frobenius norm is
// `norm` (ft.py's step after each update). A zero tensor is left as it is.
void project_to_norm(torch::Tensor& weight, double norm);

// Re-initialises a linear head as ft.py does: weight and bias uniform in
// [-1/sqrt(in_features), 1/sqrt(in_features)], drawn on the CPU from `seed`
// (so the same on any device), written in place outside autograd.
void reinit_head(torch::Tensor& weight, torch::Tensor& bias, uint64_t seed);

// Cosine of the angle between two tensors read as flat vectors; 0 when
// either is zero.
double tensor_cosine(const torch::Tensor& a, const torch::Tensor& b);

class Fst : public DefenseWith<FstOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "fst"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

// Shared Adversarial Unlearning (Wei, Zhang, Wu, Wang, Zha, Li, "Shared
// Adversarial Unlearning: Backdoor Mitigation by Unlearning Shared Adversarial
// Examples", NeurIPS 2023; code: BackdoorBench, github.com/SCLBD/BackdoorBench,
// defense/sau.py and config/defense/sau/config.yaml, the authors' own).
// A frozen copy of the backdoored model is the reference. Each step, on one
// batch of clean images:
//  1. Shared PGD: a per-image perturbation delta, |delta| <= eps (L-inf) in
//     [0, 1] pixel space, from delta = +eps, `pgd_steps` signed descent steps
//     of `pgd_lr` on beta1 * L_adv + beta2 * L_share, where L_adv is minus the
//     CE (true labels) of the images each model does not yet misclassify and
//     L_share the Jensen-Shannon divergence of the two models' outputs on the
//     images not yet "shared" (both models change their clean prediction, to
//     the same label). Stops early once every image is shared.
//  2. Unlearning: one Adam step on lambda1 * CE(x) + lambda2 * CE(x + delta)
//     + lambda3 * L_sar, where L_sar (sau.py's loss_shared) lowers the
//     model's probability of the reference's adversarial label on the images
//     the reference misclassifies (its prediction on x + delta differs from
//     the label and from its prediction on x).
// Both models stay in eval mode throughout (BatchNorm statistics frozen: the
// code's default, train_mode off). Differences from sau.py: the lr is
// constant (sau.py builds a cosine scheduler but never steps it, so the same),
// no augmentation (sau.py uses its test transform too), and batches are
// drawn by a seeded shuffle.
#pragma once

#include <torch/types.h>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

// Defaults from config/defense/sau/config.yaml (same in cifar10.yaml).
struct SauOptions {
  int epochs = 100;          // passes over the tuning set (n_rounds: 100)
  double lr = 1e-4;          // Adam, betas (0.9, 0.999), no weight decay
  int64_t batch_size = 256;  // batch_size: 256
  double eps = 0.2;          // L-inf bound of delta in [0, 1] pixels (trigger_norm)
  int pgd_steps = 5;         // adv_steps: 5
  double pgd_lr = 0.2;       // signed step size (adv_lr: 0.2)
  double beta1 = 0.01;       // weight of L_adv in the PGD (beta_1)
  double beta2 = 1.0;        // weight of L_share in the PGD (beta_2)
  double lambda1 = 1.0;      // clean CE (lmd_1)
  double lambda2 = 0.0;  // CE of x + delta with true labels, adversarial training (lmd_2)
  double lambda3 = 1.0;  // shared adversarial risk L_sar (lmd_3)
  double holdout = 0.1;  // share of the clean set kept for ACC checks
  static const OptionTable<SauOptions>& table();
};

// Projects delta onto the L-inf ball of radius `bound`, in place (a clamp).
void project_linf(torch::Tensor& delta, double bound);

// Per image: both models changed their prediction away from their base
// (pred != base, pred_ref != base_ref) and agree (pred == pred_ref). Bool [B].
torch::Tensor shared_mask(const torch::Tensor& pred, const torch::Tensor& pred_ref,
                          const torch::Tensor& base, const torch::Tensor& base_ref);

// Jensen-Shannon divergence of softmax(a) and softmax(b) per row, as sau.py
// computes it (probabilities clamped at 1e-8). [B].
torch::Tensor js_divergence(const torch::Tensor& logits_a, const torch::Tensor& logits_b);

// sau.py's loss_shared: over the rows where `mask` is set, with p the model's
// probability of ref_label, (-log(1e-6 + min(1 - p, 0.999)) - log(1 + 1e-6 -
// max(p, 0.001))) / 2, summed and divided by the batch size. 0 for no row.
torch::Tensor shared_unlearning_loss(const torch::Tensor& logits,
                                     const torch::Tensor& ref_label,
                                     const torch::Tensor& mask);

// What one shared PGD run left: the perturbation and how many images ended
// shared adversarial examples.
struct SharedPgdResult {
  torch::Tensor delta;  // [B, C, H, W], no gradient
  int64_t shared = 0;
  int steps = 0;  // PGD steps made (fewer than asked when all were shared)
};

// Shared PGD (sau.py's Shared_PGD.attack) on unit images x [0, 1] with
// labels y; `model` and `ref` in eval mode. Their parameters get no gradient.
SharedPgdResult shared_pgd(ResNet18& model, ResNet18& ref, const torch::Tensor& x,
                           const torch::Tensor& y, const Normalization& n,
                           const SauOptions& options);

class Sau : public DefenseWith<SauOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "sau"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

// Implicit Backdoor Adversarial Unlearning (Zeng, Chen, Park, Mao, Jin, Jia,
// "Adversarial Unlearning of Backdoors via Implicit Hypergradient", ICLR 2022;
// code: github.com/YiZeng623/I-BAU, defense.py and hypergrad.py, and its port
// in BackdoorBench, defense/i-bau.py). The min-max
//   min_theta max_delta  CE(f_theta(x + delta), y)
// over one universal perturbation delta (one [1, C, H, W] tensor added to
// every image, in [0, 1] pixel space), in `rounds` rounds over the tuning set:
//  1. inner max: delta from zero, one SGD step of `pert_lr` per batch on
//     -CE(f(x + delta), f's own prediction on x) + pert_decay * ||delta||^2
//     (the L2 penalty is the code's only bound: its projection
//     delta * min(1, 10 / ||delta||) is commented out, so radius=0, none, is
//     the default; radius=R projects onto the L2 ball of radius R);
//  2. outer min: per batch one Adam step on the implicit hypergradient of
//     the outer loss CE(f(x + m * delta), y) (m: `portion` of the batch's
//     images, drawn anew each step, carry delta) with delta seen as the fixed
//     point of the inner map delta - inner_lr * grad_delta L_inner, where
//     L_inner = -CE(f(x0 + delta), y0) + pert_decay * ||delta||^2 on the first
//     batch (x0, y0) (the code's loss_inner uses images_list[0] with true
//     labels). The hypergradient is hypertorch's fixed_point with K = `k`
//     iterations (fixed_point_hypergradient below).
// The model stays in eval mode throughout (the code's model.eval()).
// Differences from the code: batches are a seeded shuffle fixed for the run
// (defense.py: unshuffled; BackdoorBench: reshuffled for the inner max), the
// portion's images are drawn from the defense's generator, the first
// fixed-point product (with v = 0, so zero) is not computed, no augmentation.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

// Defaults from the authors' defense.py arguments (BackdoorBench's
// config/defense/i-bau/config.yaml differs: lr 1e-4, batch_size 256).
struct IbauOptions {
  int rounds = 5;            // unlearning rounds (--n_rounds 5)
  int k = 5;                 // fixed-point iterations of the hypergradient (--K 5)
  double lr = 1e-3;          // Adam lr of the outer min (--optim Adam --lr 0.001)
  int64_t batch_size = 100;  // --batch_size 100
  double inner_lr = 0.1;  // step of the inner map (hg.GradientDescent(loss_inner, 0.1))
  double pert_lr = 10.0;  // SGD lr of the universal perturbation (lr=10)
  double pert_decay = 1e-3;  // weight of ||delta||^2 in the inner losses (0.001)
  double portion = 0.01;     // share of a batch given delta in the outer loss (0.01)
  double radius = 0.0;       // L2 bound of delta; 0: none (the code's line is off)
  double holdout = 0.1;      // share of the clean set kept for ACC checks
  static const OptionTable<IbauOptions>& table();
};

using TensorList = std::vector<torch::Tensor>;
// The inner problem's fixed-point map w -> Phi(w, h) (e.g. a gradient step),
// with a graph to w and h (create_graph).
using FixedPointMap = std::function<TensorList(const TensorList& w, const TensorList& h)>;
// A scalar loss of (w, h).
using PairLoss = std::function<torch::Tensor(const TensorList& w, const TensorList& h)>;

// The map w - step * grad_w loss(w, h), differentiable in w and h
// (hypertorch's GradientDescent).
FixedPointMap gradient_descent_map(PairLoss loss, double step);

// The hypergradient d outer(w*(h), h) / dh at w = w*(h) = Phi(w*, h), by k
// fixed-point iterations v <- (dPhi/dw)^T v + d outer/dw from v = 0 (stops
// early when v moves less than `tol`), then dPhi/dh^T v + d outer/dh
// (hypertorch's fixed_point, I-BAU's hypergrad.py). `h` require grad. One
// tensor per h; `iterations` the ones made.
struct Hypergradient {
  TensorList grads;
  int iterations = 0;
};
Hypergradient fixed_point_hypergradient(const TensorList& w, const TensorList& h, int k,
                                        const FixedPointMap& map, const PairLoss& outer,
                                        double tol = 1e-10);

// Scales delta in place onto the L2 ball of `radius` when its norm is larger.
void project_l2(torch::Tensor& delta, double radius);

// A mini-batch of unit images [0, 1] and labels, on the device.
struct UnitBatch {
  torch::Tensor x, y;
};

// The inner max of one round: the universal perturbation [1, C, H, W] from
// zero, one SGD step per batch (then project_l2 when options.radius > 0).
torch::Tensor universal_perturbation(ResNet18& model,
                                     const std::vector<UnitBatch>& batches,
                                     const Normalization& n, const IbauOptions& options);

class Ibau : public DefenseWith<IbauOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "i-bau"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

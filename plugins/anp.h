// Adversarial Neuron Pruning (Wu, Wang, "Adversarial Neuron Pruning Purifies
// Backdoored Deep Models", NeurIPS 2021; code: github.com/csdongxian/
// ANP_backdoor, optimize_mask_cifar.py and prune_neuron_cifar.py). Every
// BatchNorm neuron (channel) k gets a mask m_k in [0, 1]; under ANP's
// multiplicative perturbation its BatchNorm computes
//   weight_k * (m_k + delta_k) * x_hat + bias_k * (1 + xi_k),  |delta|, |xi| <= eps
// The masks are learned on clean data by SGD on
//   alpha * CE(masked) + (1 - alpha) * max_{delta, xi} CE(masked, perturbed)
// (the max by pgd_steps signed steps from a random start): a backdoor's
// neurons, which make the model fragile to such perturbations, get small
// masks. Neurons whose mask is at or below a threshold are then pruned
// (ChannelMask: conv filter, BatchNorm weight and bias set to zero). The
// threshold is the largest of a grid whose clean holdout ACC stays within
// `max_acc_drop` points of the model before: chosen from clean data only.
// No fine-tuning afterwards, as in the paper.
#pragma once

#include <torch/types.h>

#include <optional>
#include <vector>

#include "plugins/defense.h"
#include "plugins/option_table.h"

namespace fedvar::plugins {

struct AnpOptions {
  int iterations = 0;    // mask SGD steps; 0: anp_iterations() (ANP's --nb-iter: 2000)
  double eps = 0.4;      // perturbation budget (--anp-eps)
  int pgd_steps = 1;     // signed ascent steps per iteration (--anp-steps)
  double alpha = 0.2;    // weight of the unperturbed loss (--anp-alpha)
  double mask_lr = 0.2;  // mask SGD lr, momentum 0.9 (--lr)
  int64_t batch_size = 128;      // drawn with replacement from the clean set
  double max_acc_drop = 2.0;     // holdout ACC points the pruning may cost
  double threshold_step = 0.05;  // grid of thresholds 0, step, ... (--pruning-step)
  double threshold_max = 0.9;    // up to this (--pruning-max)
  double holdout = 0.1;          // share of the clean set kept for ACC checks
  static const OptionTable<AnpOptions>& table();
};

// The mask steps a run makes on `tune_size` images: options.iterations, or
// when 0, kAnpAutoPasses passes over them in mini-batches, within [100, 2000]
// (2000: the paper's, on its 500 images).
constexpr int kAnpAutoPasses = 30;
int anp_iterations(const AnpOptions& options, int64_t tune_size);

// One row of the threshold sweep: neurons pruned at `threshold` and the
// holdout ACC (percent) of the model so pruned.
struct ThresholdTrial {
  double threshold = 0.0;
  int64_t pruned = 0;
  double acc = 0.0;
};

// 0, step, 2 step, ... up to `max` (inclusive, within rounding). step > 0.
std::vector<double> threshold_grid(double step, double max);

// The index of the trial with the largest threshold whose acc is at least
// acc_before - max_drop; nullopt when there is none (then prune nothing).
std::optional<size_t> choose_threshold(const std::vector<ThresholdTrial>& trials,
                                       double acc_before, double max_drop);

// For each mask (one 1-d tensor per layer), the indices of its entries at or
// below `threshold`.
std::vector<std::vector<int64_t>> neurons_at_or_below(
    const std::vector<torch::Tensor>& masks, double threshold);

// ANP's NoisyBatchNorm2d over the BatchNorms of `layers` (a model's
// conv_layers()): per neuron a mask (ones, learnable) and noises (zeros).
// install() points each BatchNorm's weight and bias at the masked (and
// perturbed) products; the destructor puts the original parameters back.
// The layers' module must outlive this object. Not copyable.
class NeuronPerturbation {
 public:
  explicit NeuronPerturbation(std::vector<ConvBn> layers);
  ~NeuronPerturbation();
  NeuronPerturbation(const NeuronPerturbation&) = delete;
  NeuronPerturbation& operator=(const NeuronPerturbation&) = delete;

  // weight * (mask + noise), bias * (1 + noise_bias) when perturbed, else
  // weight * mask and bias. Call before each forward (a new graph each time).
  void install(bool perturbed);
  // Noises uniform in [-eps, eps] (drawn on the CPU from `gen`).
  void randomize_noise(double eps, at::Generator& gen);
  // noise += step * sign(grad), then clipped to [-eps, eps]; `grads` in
  // noises() order.
  void ascend_noise(const std::vector<torch::Tensor>& grads, double step, double eps);
  void clip_masks();  // to [0, 1]
  const std::vector<torch::Tensor>& masks() const { return masks_; }
  const std::vector<torch::Tensor>& noises() const { return noises_; }

 private:
  std::vector<ConvBn> layers_;
  std::vector<torch::Tensor> weights_, biases_;  // the BatchNorms' own parameters
  std::vector<torch::Tensor> masks_;
  std::vector<torch::Tensor> noises_;  // per layer: weight noise, then bias noise
};

// Learns ANP's masks on `data` (a copy of `model` in train mode, as ANP's
// script; `model` is not changed). One CPU mask per conv_layers() entry.
// Errors: an empty data set; libtorch's exceptions propagate.
Result<std::vector<torch::Tensor>> learn_neuron_masks(ResNet18& model,
                                                      const Dataset& data,
                                                      const DefenseContext& ctx,
                                                      const AnpOptions& options);

class Anp : public DefenseWith<AnpOptions> {
 public:
  using DefenseWith::DefenseWith;
  std::string name() const override { return "anp"; }

 protected:
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;
};

}  // namespace fedvar::plugins

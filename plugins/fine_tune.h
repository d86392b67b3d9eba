// The fine-tuning loop every defense shares, with a pluggable loss (plain
// cross-entropy, VarDefense's alpha*CE + L1, NAD's CE + attention loss) and
// a hook after every optimizer step (to keep purified channels at zero).
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"
#include "core/status.h"
#include "core/stopwatch.h"
#include "plugins/defense.h"

namespace fedvar::plugins {

struct FineTuneOptions {
  int epochs = 10;
  double lr = 0.01;  // the paper's SGD setting (4.1.5)
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t batch_size = 128;  // the paper's setting
  uint64_t seed = 0;
  // Anneal lr from `lr` to 0 along a half cosine over the run's steps (as
  // BackdoorBench's fine-tuning does). On 900 clean images a constant lr
  // 0.01 for 15 epochs cost 3.8 ACC points; annealed, 1.1 (docs/vardefense-results.md).
  bool cosine = false;
  // Each image randomly shifted by up to 2 pixels (zero padding, cropped
  // back to its size) and flipped left-right with probability 1/2, as
  // BackdoorBench's fine-tuning augments CIFAR (4 pixels of 32). Off: on the
  // federation's models, trained without it, it cost 3-6 ACC points
  // (docs/federation-results.md, session 10).
  bool augment = false;
};

// augment's transform of a batch of unit-float images (N, C, H, W).
torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& gen);

// Loss of one mini-batch: normalized images x, labels y.
using LossFn = std::function<torch::Tensor(ResNet18& model, const torch::Tensor& x,
                                           const torch::Tensor& y)>;

torch::Tensor cross_entropy_loss(ResNet18& model, const torch::Tensor& x,
                                 const torch::Tensor& y);

// The learning rate of step `step` of `steps` under FineTuneOptions::cosine:
// lr * (1 + cos(pi * step / steps)) / 2, lr at step 0, towards 0 at the end.
double cosine_lr(double lr, int64_t step, int64_t steps);

// Knowledge distillation (Hinton et al. 2015): T^2 KL(softmax(teacher(x)/T)
// || softmax(logits/T)), batch mean; the teacher runs in eval mode, no grad.
torch::Tensor distillation_loss(const torch::Tensor& logits, ResNet18& teacher,
                                const torch::Tensor& x, double temperature);

// SGD over `data` for opts.epochs epochs (train mode), minimising `loss`;
// `after_step` (may be empty) runs after each step. Ends in eval mode.
Status fine_tune(ResNet18& model, const Dataset& data, const DefenseContext& ctx,
                 const FineTuneOptions& opts, const LossFn& loss,
                 const std::function<void()>& after_step = {});

// Re-estimates every BatchNorm's running mean and variance on `data`: one
// pass in train mode without gradients, averaged over the pass (cumulative,
// not exponential). After a purification or a few fine-tuning steps the
// running statistics still mix in those of the weights before (8 steps of
// momentum 0.1 on 900 images keep 43 % of them), which skews both the
// evaluation and VarDefense's variance measurement. Ends in eval mode.
void recalibrate_batchnorm(ResNet18& model, const Dataset& data,
                           const DefenseContext& ctx, int64_t batch_size);

// The running mean and variance of every BatchNorm, in conv_layers() order
// (copies). VarDefense measures variance through the statistics the model
// came with: those were estimated on the training data, trigger included,
// so a channel that only the trigger drives is normalized by a spread it
// never reaches on clean data and shows a low variance. Statistics
// re-estimated on the clean set (recalibrate_batchnorm, or fine-tuning in
// train mode) normalize it by its clean spread and hide it (docs/vardefense-results.md).
struct BatchNormStats {
  std::vector<torch::Tensor> mean, var;
};
BatchNormStats batchnorm_stats(ResNet18& model);
void set_batchnorm_stats(ResNet18& model, const BatchNormStats& stats);

// The defender's clean set cut in two: `tune` for the defense, `holdout` to
// measure clean ACC before/after (never trained on). Deterministic by seed.
struct CleanSplit {
  Dataset tune;
  Dataset holdout;
};
Result<CleanSplit> split_clean(const Dataset& clean, double holdout_fraction,
                               uint64_t seed);

// Deep copy (new weights), unlike copying the ResNet18 holder.
ResNet18 clone_model(ResNet18& model);

// Clean ACC (percent) on `data`.
double clean_accuracy(ResNet18& model, const Dataset& data, const DefenseContext& ctx);

// The keys every defense report shares: {"defense", "holdout_images",
// "acc_before", "acc_after"}, acc_after measured now on split.holdout.
nlohmann::json holdout_report(const std::string& defense, ResNet18& model,
                              const CleanSplit& split, double acc_before,
                              const DefenseContext& ctx);

}  // namespace fedvar::plugins

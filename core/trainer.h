// The one SGD loop of fedvar: a client's local epochs, `fedvar train` and every
// defense's fine-tuning run through train_model(). What differs between them
// is a per-batch transform (poisoning, augmentation), the loss (cross-entropy,
// VarDefense's Eq. 1, NAD's attention loss) and a hook after each step.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"
#include "core/status.h"
#include "core/trigger.h"

namespace fedvar {

struct TrainOptions {
  int epochs = 1;
  double lr = 0.01;  // SGD, the paper's setting (4.1.5)
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t batch_size = 128;  // the paper's setting
  uint64_t seed = 0;         // shuffling and the transform's randomness
  // Anneal lr from `lr` towards 0 along a half cosine over all steps.
  bool cosine = false;
  Normalization normalization;
  torch::Device device = torch::kCPU;
};

// Poisoning: `ratio` of every mini-batch stamped and relabelled (paper 4.1.1).
struct PoisonOptions {
  TriggerSpec trigger;
  int64_t target = 0;
  double ratio = 0.05;
};

struct EpochStats {
  int epoch = 0;      // 1-based
  double loss = 0.0;  // mean loss over the epoch
  double train_acc = 0.0;
  int64_t poisoned = 0;  // images the transform changed this epoch
  double seconds = 0.0;
};

// A batch's loss and the logits it came from (for the training accuracy).
struct BatchLoss {
  torch::Tensor loss;
  torch::Tensor logits;
};
// The loss of normalized images x with labels y.
using LossFn = std::function<BatchLoss(ResNet18& model, const torch::Tensor& x,
                                       const torch::Tensor& y)>;
// Changes a batch of unit-float images x and labels y in place before the
// step; returns how many images it changed. `gen` is the loop's generator.
using BatchTransform =
    std::function<int64_t(torch::Tensor& x, torch::Tensor& y, at::Generator& gen)>;

// What varies between the trainings; every member may be empty.
struct TrainHooks {
  BatchTransform transform;
  LossFn loss;                       // empty: cross-entropy
  std::function<void()> after_step;  // e.g. keep purified channels at zero
  std::function<void(int epoch, int64_t batch, int64_t batches, double loss)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  int64_t report_every = 50;  // batches between on_batch calls
};

// Trains in place with SGD. Fails on an empty data set, a channel-count
// mismatch or a libtorch error (its message, not an exception). The model
// ends on opts.device in train mode.
Result<std::vector<EpochStats>> train_model(ResNet18& model, const Dataset& data,
                                            const TrainOptions& opts,
                                            const TrainHooks& hooks = {});

// Cross-entropy of the model's logits.
BatchLoss cross_entropy(ResNet18& model, const torch::Tensor& x, const torch::Tensor& y);

// The attacker's transform: stamps `poison.ratio` of each batch (seeded).
BatchTransform poison_transform(const PoisonOptions& poison, uint64_t seed);

// The lr of step `step` of `steps` under TrainOptions::cosine:
// lr * (1 + cos(pi * step / steps)) / 2.
double cosine_lr(double lr, int64_t step, int64_t steps);

}  // namespace fedvar

// Supervised training of a ResNet18 on a Dataset, optionally with a share of
// every mini-batch poisoned (the attacker's side of the paper's setup).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>

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
  uint64_t seed = 0;         // shuffling and poisoning
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
  double loss = 0.0;  // mean cross-entropy over the epoch
  double train_acc = 0.0;
  int64_t poisoned = 0;  // images stamped this epoch
  double seconds = 0.0;
};

// Called after every `report_every` batches (batch index, running loss) and
// at the end of every epoch; used for progress on stderr.
struct TrainCallbacks {
  std::function<void(int epoch, int64_t batch, int64_t batches, double loss)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  int64_t report_every = 50;
};

// Trains in place with SGD + cross-entropy. Fails on an empty data set or a
// channel-count mismatch; the model ends on opts.device in train mode.
Result<std::vector<EpochStats>> train_model(ResNet18& model, const Dataset& data,
                                            const TrainOptions& opts,
                                            const std::optional<PoisonOptions>& poison,
                                            const TrainCallbacks& callbacks = {});

}  // namespace fedvar

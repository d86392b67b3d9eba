// The tiny backdoored model that the training and defense tests share: a
// width-8 ResNet18 trained for 3 epochs on 4000 real Fashion-MNIST images
// with a 5x5 checkerboard at random positions in 10% of every batch.
// About 40 s on 2 CPU cores.
#pragma once

#include <torch/torch.h>

#include "core/dataset.h"
#include "core/metrics.h"
#include "core/trainer.h"

namespace fedvar::testing {

struct PoisonedFixture {
  ResNet18 model{nullptr};
  Dataset train;  // the 4000 training rows
  Dataset test;   // 2000 test rows
  TriggerSpec trigger;
  int64_t target = 0;
  Normalization normalization;
  std::vector<EpochStats> history;
};

inline PoisonedFixture make_poisoned_fixture() {
  PoisonedFixture f;
  auto train = load_dataset(FEDVAR_FASHION_MNIST, "train");
  auto test = load_dataset(FEDVAR_FASHION_MNIST, "test");
  if (!train.ok() || !test.ok()) return f;
  f.train = train->slice(0, 4000);
  f.test = test->slice(0, 2000);
  f.trigger = parse_trigger("patch:size=5,pattern=checkerboard,position=random").value();
  f.normalization = Normalization::estimate(f.train);
  torch::manual_seed(0);
  f.model = ResNet18(ResNetOptions{1, 10, Stem::kCifar, 8});
  TrainOptions opts;
  opts.epochs = 3;
  opts.lr = 0.05;
  opts.normalization = f.normalization;
  TrainHooks hooks;
  hooks.transform = poison_transform({f.trigger, f.target, /*ratio=*/0.1}, opts.seed);
  auto history = train_model(f.model, f.train, opts, hooks);
  if (history.ok()) f.history = history.value();
  return f;
}

}  // namespace fedvar::testing

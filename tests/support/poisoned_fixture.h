// The tiny backdoored model that the training and defense tests share: a
// width-8 ResNet18 trained for 3 epochs on 4000 real Fashion-MNIST images
// with a 5x5 checkerboard at random positions in 10% of every batch.
// About 10-40 s on 2 CPU cores. Also the defender's side of a fixture test:
// the clean context and the scores before and after a defense.
#pragma once

#include <torch/torch.h>

#include <iostream>
#include <string>

#include "core/dataset.h"
#include "core/metrics.h"
#include "core/model_io.h"
#include "core/trainer.h"
#include "plugins/defense.h"
#include "plugins/registry.h"

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

// ACC and ASR (percent) of a model on the fixture's test rows.
struct FixtureScores {
  double acc = -1;
  double asr = -1;
};

inline FixtureScores score(ResNet18 model, const PoisonedFixture& f) {
  const EvalOptions eval{f.normalization};
  FixtureScores s;
  auto acc = accuracy_percent(model, f.test, eval);
  auto asr = attack_success_percent(model, f.test, f.trigger, f.target, eval);
  if (acc.ok()) s.acc = *acc;
  if (asr.ok()) s.asr = *asr;
  return s;
}

// The defender's clean set: the last `images` training rows, which neither
// the fixture's training rows nor its test rows contain.
inline plugins::DefenseContext clean_context(const PoisonedFixture& f,
                                             int64_t images = 1000) {
  plugins::DefenseContext ctx;
  ctx.clean = load_dataset(FEDVAR_FASHION_MNIST, "train")->slice(60000 - images, 60000);
  ctx.normalization = f.normalization;
  ctx.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  return ctx;
}

// One defense spec run on a copy of the fixture's model.
struct DefenseRun {
  ResNet18 model{nullptr};
  nlohmann::json report;  // null when make_defense or apply failed
  std::string error;
  FixtureScores after;
};

inline DefenseRun run_defense(const PoisonedFixture& f, const std::string& spec,
                              const plugins::DefenseContext& ctx) {
  DefenseRun run;
  ResNet18 source = f.model;  // a holder: shares the module
  run.model = clone_model(source);
  auto defense = plugins::make_defense(spec);
  if (!defense.ok()) {
    run.error = defense.status().message();
    return run;
  }
  auto report = (*defense)->apply(run.model, ctx);
  if (!report.ok()) {
    run.error = report.status().message();
    return run;
  }
  run.report = *report;
  run.after = score(run.model, f);
  std::cerr << spec << ": ACC " << run.after.acc << ", ASR " << run.after.asr
            << ", report " << run.report.dump() << "\n";
  return run;
}

}  // namespace fedvar::testing

#include "aggregator/round_pipeline.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "core/normalization.h"
#include "plugins/registry.h"
#include "tests/support/random_context.h"

namespace fedvar::aggregator {
namespace {

// A clean set the model gets exactly half right: its own prediction as the
// label on even images, another class on odd ones. Which images a split
// holds out then decides the holdout ACC.
plugins::DefenseContext half_right_context(ResNet18& model) {
  torch::manual_seed(1);
  auto ctx = testing::random_context(200);
  torch::NoGradGuard no_grad;
  model->eval();
  auto x = normalize(to_unit_float(ctx.clean.images, torch::kCPU), ctx.normalization);
  auto predicted = model->forward(x).argmax(1);
  auto odd = torch::arange(200) % 2 == 1;
  ctx.clean.labels = torch::where(odd, (predicted + 1) % 10, predicted);
  return ctx;
}

// The hook's holdout ACC before it changes anything, with the context as the
// pipeline gives it to the hook in `round`.
std::vector<double> holdout_acc_by_round(RoundPipeline& pipeline, ResNet18& model,
                                         int rounds) {
  std::vector<double> acc;
  for (int round = 1; round <= rounds; ++round) {
    RoundOutcome outcome;
    outcome.round = round;
    outcome.aggregated = true;
    EXPECT_TRUE(pipeline.run_hooks(outcome, model).ok());
    EXPECT_TRUE(pipeline.record(outcome, model).ok());
    const auto& hook = pipeline.history().back()["hooks"][0];
    EXPECT_EQ(hook["holdout_seed"],
              pipeline.history().front()["hooks"][0]["holdout_seed"]);
    acc.push_back(hook["acc_before"].get<double>());
  }
  return acc;
}

// Every round's hook holds out the same clean images (a fresh shuffle seed
// each round, one split seed for the run): otherwise a later round's report
// would measure on images an earlier round's hook trained on.
TEST(RoundPipeline, HooksHoldOutTheSameCleanImagesEveryRound) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto context = half_right_context(model);
  context.seed = 7;

  // The check has power: splits with other seeds give other holdout ACCs.
  std::set<double> by_seed;
  for (uint64_t seed = 8; seed < 12; ++seed) {
    auto hook = plugins::make_defense("fine-tuning:epochs=0");
    ASSERT_TRUE(hook.ok());
    auto ctx = context;
    ctx.seed = seed;
    auto report = (*hook)->apply(model, ctx);
    ASSERT_TRUE(report.ok());
    by_seed.insert(report.value()["acc_before"].get<double>());
  }
  ASSERT_GT(by_seed.size(), 1u);

  const auto dir = std::filesystem::temp_directory_path() / "fedvar_round_pipeline_test";
  std::filesystem::create_directories(dir);
  PipelineOptions options;
  options.run = "split";
  options.metrics_path = (dir / "metrics.jsonl").string();
  std::vector<std::unique_ptr<plugins::Defense>> hooks;
  hooks.push_back(plugins::make_defense("fine-tuning:epochs=0").value());
  EvalSpec eval{
      testing::random_context(20).clean, std::nullopt, 0, {context.normalization}};
  RoundPipeline pipeline(options, std::move(hooks), context, eval);
  const auto acc = holdout_acc_by_round(pipeline, model, 4);
  for (double a : acc) EXPECT_EQ(a, acc.front());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedvar::aggregator

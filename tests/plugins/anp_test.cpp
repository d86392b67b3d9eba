// Adversarial Neuron Pruning: the threshold grid and choice (pure), the
// neuron perturbation over a model's BatchNorms, its options, and one run on
// the backdoored fixture (~15-40 s to train it, about as long for 40 mask iterations of
// 64 images).
#include "plugins/anp.h"

#include <cstdint>

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "core/model_io.h"
#include "plugins/registry.h"
#include "tests/support/defense_options.h"
#include "tests/support/poisoned_fixture.h"

namespace fedvar::plugins {
namespace {

TEST(Anp, ThresholdGridIsAnpsArange) {
  const auto grid = threshold_grid(0.05, 0.9);
  ASSERT_EQ(grid.size(), 19u);
  EXPECT_EQ(grid.front(), 0.0);
  EXPECT_NEAR(grid[1], 0.05, 1e-12);
  EXPECT_NEAR(grid.back(), 0.9, 1e-12);
  EXPECT_EQ(threshold_grid(0.3, 0.2).size(), 1u);  // 0 only
}

TEST(Anp, ChoosesTheLargestThresholdWithinTheAccBudget) {
  // Holdout ACC before pruning: 80; budget 2 points.
  const std::vector<ThresholdTrial> table = {
      {0.0, 0, 80.0},  {0.05, 3, 80.0},  {0.1, 6, 79.0},  {0.15, 9, 77.0},
      {0.2, 12, 78.5}, {0.25, 20, 70.0}, {0.3, 30, 40.0},
  };
  auto pick = choose_threshold(table, 80.0, 2.0);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(table[*pick].threshold, 0.2);  // 0.15 is out, 0.2 back in, then out
  pick = choose_threshold(table, 80.0, 0.0);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(table[*pick].threshold, 0.05);  // ties with the model before count
  pick = choose_threshold(table, 80.0, 100.0);
  EXPECT_EQ(table[*pick].threshold, 0.3);
  EXPECT_FALSE(choose_threshold(table, 95.0, 2.0).has_value());
  EXPECT_FALSE(choose_threshold({}, 80.0, 2.0).has_value());
}

TEST(Anp, IterationsScaleWithTheCleanSetWithinBounds) {
  AnpOptions o;
  EXPECT_EQ(anp_iterations(o, 900), 211);  // 30 passes of 128-image batches
  EXPECT_EQ(anp_iterations(o, 100), 100);
  EXPECT_EQ(anp_iterations(o, 50000), 2000);
  o.iterations = 7;
  EXPECT_EQ(anp_iterations(o, 50000), 7);
}

TEST(Anp, NeuronsAtOrBelowAThreshold) {
  const std::vector<torch::Tensor> masks = {torch::tensor({0.9f, 0.1f, 0.2f, 0.0f}),
                                            torch::tensor({1.0f, 0.5f})};
  const auto below = neurons_at_or_below(masks, 0.2);
  ASSERT_EQ(below.size(), 2u);
  EXPECT_EQ(below[0], (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(below[1].empty());
}

// Masks of one and no noise leave the network as it was; a mask of zero is the
// neuron's BatchNorm weight at zero; the destructor puts the parameters back.
TEST(Anp, PerturbationMasksBatchNormWeightsAndRestoresThem) {
  torch::manual_seed(1);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  model->eval();
  const auto x = torch::randn({2, 1, 28, 28});
  const auto before = model->forward(x).detach();
  auto expected_model = clone_model(model);
  expected_model->eval();
  {
    torch::NoGradGuard no_grad;
    expected_model->conv_layers()[3].bn->weight[1].zero_();
  }
  const auto expected = expected_model->forward(x).detach();
  {
    NeuronPerturbation p(model->conv_layers());
    p.install(/*perturbed=*/false);
    EXPECT_TRUE(torch::allclose(model->forward(x), before, 1e-5, 1e-6));
    {
      torch::NoGradGuard no_grad;
      p.masks()[3][1].zero_();
    }
    p.install(/*perturbed=*/false);
    EXPECT_TRUE(torch::allclose(model->forward(x), expected, 1e-5, 1e-6));
    auto gen = at::detail::createCPUGenerator(0);
    p.randomize_noise(0.4, gen);
    for (const auto& n : p.noises()) EXPECT_LE(n.abs().max().item<double>(), 0.4);
    p.install(/*perturbed=*/true);
    EXPECT_FALSE(torch::allclose(model->forward(x), expected, 1e-3, 1e-4));
  }
  EXPECT_TRUE(torch::equal(model->forward(x), before));
  auto params = model->named_parameters();
  EXPECT_TRUE(model->conv_layers()[3].bn->weight.is_same(params["layer1.1.bn1.weight"]));
}

TEST(Anp, BadOptionsAreErrorsNamingTheOption) {
  EXPECT_TRUE(make_defense("anp").ok());
  EXPECT_TRUE(make_defense("anp:iterations=100,eps=0.3,max_acc_drop=1").ok());
  testing::expect_bad_options_named(
      "anp", {"eps=1.5", "eps=-0.1", "alpha=2", "iterations=-1", "pgd_steps=0",
              "mask_lr=abc", "max_acc_drop=-1", "threshold_step=0", "threshold_max=1.2",
              "holdout=0", "batch_size=0"});
  testing::expect_unknown_option_named("anp:threshold=0.2", "threshold");
  auto defaults = AnpOptions::table().echo(AnpOptions{});
  EXPECT_EQ(defaults["eps"], 0.4);
  EXPECT_EQ(defaults["pgd_steps"], 1);
  EXPECT_EQ(defaults["alpha"], 0.2);
  EXPECT_EQ(defaults["mask_lr"], 0.2);
}

TEST(Anp, PrunesTheFixturesBackdoorWithinTheHoldoutAccBudget) {
  auto f = testing::make_poisoned_fixture();
  ASSERT_TRUE(f.model) << "Fashion-MNIST missing or training failed";
  const auto before = testing::score(f.model, f);
  ASSERT_GT(before.asr, 90.0);

  auto run = testing::run_defense(f, "anp:iterations=40,batch_size=64",
                                  testing::clean_context(f));
  ASSERT_TRUE(run.error.empty()) << run.error;
  auto& report = run.report;
  EXPECT_FALSE(run.model->is_training());
  // The budget, on the holdout the threshold was chosen on.
  const double budget = report["options"]["max_acc_drop"].get<double>();
  EXPECT_GE(report["acc_after"].get<double>(),
            report["acc_before"].get<double>() - budget);
  // The threshold is the largest tried within it.
  ASSERT_FALSE(report["threshold"].is_null());
  const double chosen = report["threshold"].get<double>();
  for (const auto& row : report["thresholds"]) {
    if (row["threshold"].get<double>() > chosen + 1e-12) {
      EXPECT_LT(row["acc"].get<double>(), report["acc_before"].get<double>() - budget);
    }
  }
  EXPECT_GT(report["pruned_total"].get<int>(), 0);
  EXPECT_LT(run.after.asr, before.asr - 40.0);
  EXPECT_GT(run.after.acc, before.acc - 10.0);
}

}  // namespace
}  // namespace fedvar::plugins

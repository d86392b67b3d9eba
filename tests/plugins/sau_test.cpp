// Shared Adversarial Unlearning: its pieces (the L-inf projection, the shared
// criterion, the JS divergence, the unlearning loss, the shared PGD), its
// options, and a short run on the backdoored fixture (~15-40 s to train it;
// SAU's 8 steps took 23 s on one busy core, 60 s with 2 threads at load 5).
#include "plugins/sau.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/metrics.h"
#include "core/model_io.h"
#include "plugins/registry.h"
#include "tests/support/defense_options.h"
#include "tests/support/poisoned_fixture.h"

namespace fedvar::plugins {
namespace {

// One epoch of 64-image batches on 450 tuning images (8 steps), to keep the
// test short; the defaults run 100 epochs.
constexpr char kFixtureSpec[] = "sau:epochs=1,batch_size=64";

TEST(Sau, ProjectLinfClampsEachEntry) {
  auto d = torch::tensor({-0.5f, -0.1f, 0.0f, 0.15f, 0.9f});
  project_linf(d, 0.2);
  EXPECT_TRUE(torch::allclose(d, torch::tensor({-0.2f, -0.1f, 0.0f, 0.15f, 0.2f})));
}

TEST(Sau, SharedMeansBothChangedToTheSameLabel) {
  const auto base = torch::tensor({0, 0, 0, 0, 1}, torch::kLong);
  const auto base_ref = torch::tensor({0, 0, 0, 1, 1}, torch::kLong);
  const auto pred = torch::tensor({0, 2, 2, 2, 3}, torch::kLong);
  const auto pred_ref = torch::tensor({2, 3, 2, 2, 3}, torch::kLong);
  // 0: the model did not change; 1: different labels; 2: shared; 3: shared
  // although the bases differ; 4: shared.
  const auto shared = shared_mask(pred, pred_ref, base, base_ref);
  EXPECT_TRUE(torch::equal(shared, torch::tensor({false, false, true, true, true})));
}

TEST(Sau, JsDivergenceIsZeroForEqualSymmetricAndAtMostLog2) {
  torch::manual_seed(5);
  const auto a = torch::randn({4, 10});
  const auto b = torch::randn({4, 10});
  EXPECT_LT(js_divergence(a, a).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(js_divergence(a, b), js_divergence(b, a), 1e-5, 1e-7));
  EXPECT_GT(js_divergence(a, b).min().item<double>(), 0.0);
  // Disjoint, nearly one-hot distributions reach log 2.
  const auto p = torch::tensor({{50.0f, 0.0f}});
  const auto q = torch::tensor({{0.0f, 50.0f}});
  EXPECT_NEAR(js_divergence(p, q).item<double>(), std::log(2.0), 1e-4);
}

TEST(Sau, UnlearningLossCountsMaskedRowsAndPenalisesTheReferenceLabel) {
  // Row 0 gives the reference's label probability 0.5, row 1 about 0.
  auto logits = torch::tensor({{0.0f, 0.0f}, {0.0f, 20.0f}}).requires_grad_(true);
  const auto ref_label = torch::tensor({0, 0}, torch::kLong);
  const auto none = torch::tensor({false, false});
  EXPECT_EQ(shared_unlearning_loss(logits, ref_label, none).item<double>(), 0.0);
  const auto first = torch::tensor({true, false});
  auto loss = shared_unlearning_loss(logits, ref_label, first);
  // (-log(1e-6 + 0.5) - log(1 + 1e-6 - 0.5)) / 2 / batch 2
  EXPECT_NEAR(loss.item<double>(), -std::log(0.5 + 1e-6) / 2.0, 1e-5);
  loss.backward();
  const auto g = logits.grad();
  EXPECT_GT(g[0][0].item<double>(), 0.0);  // descent lowers the reference's label
  EXPECT_LT(g[0][1].item<double>(), 0.0);
  EXPECT_EQ(g[1].abs().sum().item<double>(), 0.0);
  // A row already far from the label costs almost nothing.
  const auto second = torch::tensor({false, true});
  EXPECT_LT(shared_unlearning_loss(logits, ref_label, second).item<double>(), 1e-3);
}

TEST(Sau, SharedPgdStaysInTheBallAndLeavesTheModelsAlone) {
  torch::manual_seed(2);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  model->eval();
  auto ref = clone_model(model);
  ref->eval();
  const auto x = torch::rand({6, 1, 28, 28});
  const auto y = torch::randint(10, {6}, torch::kLong);
  SauOptions o;
  o.pgd_steps = 3;
  const auto out = shared_pgd(model, ref, x, y, Normalization::none(1), o);
  EXPECT_EQ(out.delta.sizes(), x.sizes());
  EXPECT_LE(out.delta.abs().max().item<double>(), o.eps + 1e-7);
  EXPECT_GE(out.steps, 1);
  EXPECT_LE(out.steps, 3);
  EXPECT_LE(out.shared, 6);
  EXPECT_FALSE(out.delta.requires_grad());
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Sau, BadOptionsAreErrorsNamingTheOption) {
  EXPECT_TRUE(make_defense("sau").ok());
  EXPECT_TRUE(make_defense("sau:epochs=5,lr=0.001,eps=0.1,lambda2=1").ok());
  testing::expect_bad_options_named(
      "sau",
      {"epochs=-1", "lr=2", "eps=1.5", "pgd_steps=0", "pgd_lr=abc", "beta1=-1",
       "beta2=nan", "lambda1=-0.5", "lambda3=101", "batch_size=0", "holdout=0.95"});
  testing::expect_unknown_option_named("sau:lmd_1=1", "lmd_1");
  auto defaults = SauOptions::table().echo(SauOptions{});
  EXPECT_EQ(defaults["epochs"], 100);
  EXPECT_EQ(defaults["lr"], 1e-4);
  EXPECT_EQ(defaults["eps"], 0.2);
  EXPECT_EQ(defaults["pgd_steps"], 5);
  EXPECT_EQ(defaults["pgd_lr"], 0.2);
  EXPECT_EQ(defaults["beta1"], 0.01);
  EXPECT_EQ(defaults["lambda2"], 0.0);
}

TEST(Sau, LowersTheFixturesAsrAndKeepsAcc) {
  auto f = testing::make_poisoned_fixture();
  ASSERT_TRUE(f.model) << "Fashion-MNIST missing or training failed";
  const auto before = testing::score(f.model, f);
  ASSERT_GT(before.asr, 90.0);

  auto run = testing::run_defense(f, kFixtureSpec, testing::clean_context(f, 500));
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_EQ(run.report["defense"], "sau");
  EXPECT_FALSE(run.model->is_training());
  EXPECT_GT(run.report["steps"].get<int>(), 0);
  EXPECT_LT(run.after.asr, before.asr - 40.0);
  EXPECT_GT(run.after.acc, before.acc - 10.0);
}

}  // namespace
}  // namespace fedvar::plugins

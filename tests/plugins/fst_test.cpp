// Feature Shift Tuning: its pieces (the norm projection, the penalty, the
// head's re-initialisation), its options, and one run on the backdoored
// fixture (~40 s to train it, ~30 s for FST on 2 cores).
#include "plugins/fst.h"

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "core/model_io.h"
#include "plugins/registry.h"
#include "tests/support/defense_options.h"
#include "tests/support/poisoned_fixture.h"

namespace fedvar::plugins {
namespace {

TEST(Fst, ProjectToNormScalesToTheNormAndLeavesZeroAlone) {
  torch::manual_seed(3);
  auto w = torch::randn({10, 64});
  const auto direction = w / w.norm();
  project_to_norm(w, 2.5);
  EXPECT_NEAR(w.norm().item<double>(), 2.5, 1e-5);
  EXPECT_TRUE(torch::allclose(w / w.norm(), direction, 1e-5, 1e-6));
  auto zero = torch::zeros({3, 4});
  project_to_norm(zero, 1.0);
  EXPECT_EQ(zero.abs().sum().item<double>(), 0.0);
}

TEST(Fst, PenaltyIsTheInnerProductAndItsGradientTheOldHead) {
  torch::manual_seed(4);
  auto original = torch::randn({10, 16});
  auto w = torch::randn({10, 16}).requires_grad_(true);
  auto penalty = head_alignment(w, original);
  EXPECT_NEAR(penalty.item<double>(), (w.detach() * original).sum().item<double>(), 1e-4);
  penalty.backward();
  EXPECT_TRUE(torch::allclose(w.grad(), original));
  EXPECT_NEAR(tensor_cosine(original, original), 1.0, 1e-9);
  EXPECT_NEAR(tensor_cosine(original, -original), -1.0, 1e-9);
  EXPECT_EQ(tensor_cosine(original, torch::zeros_like(original)), 0.0);
}

TEST(Fst, HeadIsReinitialisedWithinTheLinearBoundBySeed) {
  auto w = torch::full({10, 64}, 5.0);
  auto b = torch::full({10}, 5.0);
  reinit_head(w, b, 7);
  EXPECT_LE(w.abs().max().item<double>(), 1.0 / 8.0);
  EXPECT_LE(b.abs().max().item<double>(), 1.0 / 8.0);
  EXPECT_GT(w.std().item<double>(), 0.02);
  auto w2 = torch::zeros({10, 64});
  auto b2 = torch::zeros({10});
  reinit_head(w2, b2, 7);
  EXPECT_TRUE(torch::equal(w, w2));
  EXPECT_TRUE(torch::equal(b, b2));
}

TEST(Fst, BadOptionsAreErrorsNamingTheOption) {
  EXPECT_TRUE(make_defense("fst").ok());
  EXPECT_TRUE(make_defense("fst:alpha=0.1,epochs=5,lr=0.02,cosine=0").ok());
  testing::expect_bad_options_named(
      "fst", {"alpha=-1", "alpha=abc", "epochs=-2", "lr=nan", "holdout=0.95",
              "batch_size=0", "cosine=2"});
  testing::expect_unknown_option_named("fst:beta=1", "beta");
  auto defaults = FstOptions::table().echo(FstOptions{});
  EXPECT_EQ(defaults["epochs"], 10);
  EXPECT_EQ(defaults["lr"], 0.01);
  EXPECT_EQ(defaults["alpha"], 0.2);
}

TEST(Fst, LowersTheFixturesAsrAndKeepsAccAndTheHeadNorm) {
  auto f = testing::make_poisoned_fixture();
  ASSERT_TRUE(f.model) << "Fashion-MNIST missing or training failed";
  const auto before = testing::score(f.model, f);
  ASSERT_GT(before.asr, 90.0);

  auto ctx = testing::clean_context(f);
  int lines = 0;
  ctx.progress = [&](const std::string&) { ++lines; };
  auto run = testing::run_defense(f, "fst", ctx);
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_EQ(run.report["defense"], "fst");
  EXPECT_EQ(run.report["holdout_images"], 100);
  EXPECT_GT(lines, 10);  // one per epoch and the head's
  EXPECT_FALSE(run.model->is_training());
  const double norm = run.model->named_parameters()["fc.weight"].norm().item<double>();
  EXPECT_NEAR(norm, run.report["head_norm"].get<double>(), 1e-3 * norm);
  EXPECT_LT(run.report["head_cosine"].get<double>(), 0.5);
  EXPECT_LT(run.after.asr, before.asr - 40.0);
  EXPECT_GT(run.after.acc, before.acc - 10.0);
}

}  // namespace
}  // namespace fedvar::plugins

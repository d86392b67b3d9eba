#include "plugins/fine_tune.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model_io.h"
#include "tests/support/random_context.h"

namespace fedvar::plugins {
namespace {

TEST(FineTune, CosineLrFallsFromLrToZero) {
  EXPECT_DOUBLE_EQ(cosine_lr(0.02, 0, 100), 0.02);
  EXPECT_NEAR(cosine_lr(0.02, 50, 100), 0.01, 1e-12);
  EXPECT_NEAR(cosine_lr(0.02, 99, 100), 0.02 * 0.5 * (1 + std::cos(M_PI * 0.99)), 1e-12);
  EXPECT_LT(cosine_lr(0.02, 99, 100), 1e-4);
  for (int s = 1; s < 100; ++s) EXPECT_LT(cosine_lr(1, s, 100), cosine_lr(1, s - 1, 100));
}

double distance(ResNet18& a, ResNet18& b) {
  double d = 0;
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) d += (pa[i] - pb[i]).pow(2).sum().item<double>();
  return std::sqrt(d);
}

// The annealed run takes the same steps at lower rates, so its weights move
// less from where they started than a constant-lr run's.
TEST(FineTune, CosineScheduleMovesTheWeightsLessThanConstantLr) {
  torch::manual_seed(0);
  ResNet18 start(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto ctx = testing::random_context(64);
  TrainOptions opts = fine_tune_options(3);
  opts.batch_size = 16;
  opts.lr = 0.05;
  auto constant = clone_model(start), annealed = clone_model(start);
  ASSERT_TRUE(fine_tune(constant, ctx.clean, ctx, opts).ok());
  opts.cosine = true;
  ASSERT_TRUE(fine_tune(annealed, ctx.clean, ctx, opts).ok());
  const double moved_constant = distance(constant, start);
  const double moved_annealed = distance(annealed, start);
  EXPECT_GT(moved_annealed, 0);
  EXPECT_LT(moved_annealed, moved_constant);
}

}  // namespace
}  // namespace fedvar::plugins

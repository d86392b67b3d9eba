#include "plugins/batchnorm_stats.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/support/random_context.h"

namespace fedvar::plugins {
namespace {

// After recalibration the stem BN's running mean is the mean of its input
// over the whole set (equal batches: the cumulative average of batch means),
// whatever the statistics were before; momentum is restored, eval mode.
TEST(BatchNormStats, RecalibrateAveragesTheStatisticsOfTheCurrentWeights) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto stem = model->conv_layers().front();
  {
    torch::NoGradGuard no_grad;
    stem.bn->running_mean.fill_(7);  // stale statistics
    stem.bn->running_var.fill_(9);
  }
  auto ctx = testing::random_context(40);
  recalibrate_batchnorm(model, ctx.clean, ctx, 10);
  EXPECT_FALSE(model->is_training());
  ASSERT_TRUE(stem.bn->options.momentum().has_value());
  EXPECT_DOUBLE_EQ(*stem.bn->options.momentum(), 0.1);
  torch::NoGradGuard no_grad;
  auto x = normalize(to_unit_float(ctx.clean.images, torch::kCPU), ctx.normalization);
  auto expected = stem.conv->forward(x).mean({0, 2, 3});
  EXPECT_TRUE(torch::allclose(stem.bn->running_mean, expected, 1e-4, 1e-5))
      << stem.bn->running_mean << expected;
  EXPECT_LT(stem.bn->running_var.max().item<float>(), 9.f);
}

}  // namespace
}  // namespace fedvar::plugins

#include "plugins/fine_tune.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

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

// Each augmented image is its original shifted by at most 2 pixels (the
// uncovered border zero) and possibly mirrored; over a batch both the shifts
// and the flips vary, and the same generator seed gives the same batch.
TEST(FineTune, AugmentShiftsAndFlipsEachImage) {
  torch::manual_seed(0);
  const auto images = torch::rand({64, 1, 28, 28}) + 0.1;  // no pixel is 0
  auto gen = at::detail::createCPUGenerator(3);
  const auto out = augment_batch(images, gen);
  ASSERT_EQ(out.sizes(), images.sizes());
  const auto padded = torch::constant_pad_nd(images, {2, 2, 2, 2}, 0);
  std::set<std::pair<int, int>> shifts;
  int flipped = 0;
  for (int64_t i = 0; i < images.size(0); ++i) {
    bool found = false;
    for (int dy = 0; dy <= 4 && !found; ++dy) {
      for (int dx = 0; dx <= 4 && !found; ++dx) {
        auto crop = padded[i].slice(1, dy, dy + 28).slice(2, dx, dx + 28);
        for (bool flip : {false, true}) {
          if (torch::equal(out[i], flip ? crop.flip({2}) : crop)) {
            found = true;
            shifts.insert({dy, dx});
            flipped += flip ? 1 : 0;
            break;
          }
        }
      }
    }
    EXPECT_TRUE(found) << "image " << i << " is no shift or flip of its original";
  }
  EXPECT_GT(shifts.size(), 5u);
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 54);
  auto again = at::detail::createCPUGenerator(3);
  EXPECT_TRUE(torch::equal(augment_batch(images, again), out));
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
  FineTuneOptions opts;
  opts.epochs = 3;
  opts.batch_size = 16;
  opts.lr = 0.05;
  auto constant = clone_model(start), annealed = clone_model(start);
  ASSERT_TRUE(fine_tune(constant, ctx.clean, ctx, opts, cross_entropy_loss).ok());
  opts.cosine = true;
  ASSERT_TRUE(fine_tune(annealed, ctx.clean, ctx, opts, cross_entropy_loss).ok());
  const double moved_constant = distance(constant, start);
  const double moved_annealed = distance(annealed, start);
  EXPECT_GT(moved_annealed, 0);
  EXPECT_LT(moved_annealed, moved_constant);
}

TEST(FineTune, DistillationLossIsZeroAgainstItselfAndPositiveAgainstAnother) {
  torch::manual_seed(0);
  ResNet18 teacher(ResNetOptions{1, 10, Stem::kCifar, 4});
  ResNet18 other(ResNetOptions{1, 10, Stem::kCifar, 4});
  teacher->eval();
  other->eval();
  auto x = torch::randn({8, 1, 28, 28});
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(distillation_loss(teacher->forward(x), teacher, x, 2.0).item<double>(), 0,
              1e-6);
  EXPECT_GT(distillation_loss(other->forward(x), teacher, x, 2.0).item<double>(), 1e-4);
}

// After recalibration the stem BN's running mean is the mean of its input
// over the whole set (equal batches: the cumulative average of batch means),
// whatever the statistics were before; momentum is restored, eval mode.
TEST(FineTune, RecalibrateBatchnormAveragesTheStatisticsOfTheCurrentWeights) {
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

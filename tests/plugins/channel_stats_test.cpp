#include "plugins/channel_stats.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fedvar::plugins {
namespace {

TEST(ChannelStats, MomentumVarianceEqualsDirectComputation) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> stream;
  for (int i = 0; i < 4; ++i) stream.push_back(torch::randn({5, 3, 4, 4}) * (i + 1));
  MomentumAverage avg(0.75);
  for (const auto& batch : stream) avg.update(channel_variance(batch));
  // Direct: v1 = var(b1); v_k = 0.75 v_{k-1} + 0.25 var(b_k), var over (N,H,W).
  torch::Tensor expected;
  for (const auto& batch : stream) {
    auto var = batch.permute({1, 0, 2, 3}).reshape({3, -1}).var(1, /*unbiased=*/false);
    expected = expected.defined() ? 0.75 * expected + 0.25 * var : var;
  }
  EXPECT_TRUE(torch::allclose(avg.value(), expected, 1e-6, 1e-6));
  // A hand-checked value: channel of {0, 2} has variance 1.
  auto known = torch::tensor({0.f, 2.f}).view({2, 1, 1, 1});
  EXPECT_FLOAT_EQ(channel_variance(known).item<float>(), 1.0f);
}

TEST(ChannelStats, MeasureChannelsSeesTheReluOutputOfEachConv) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  Dataset data{torch::randint(0, 255, {20, 1, 28, 28}).to(torch::kUInt8),
               torch::zeros({20}, torch::kLong)};
  auto stats = measure_channels(model, data, {{0.5}, {0.5}}, torch::kCPU, {0, 19},
                                {ChannelStat::kVariance, 0.9, 8});
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].size(0), 4);
  EXPECT_EQ(stats[1].size(0), 32);
  EXPECT_TRUE((stats[1] >= 0).all().item<bool>());
}

// The standardized variance is the conv output's clean variance over BN's
// running variance: BN's affine does not move it, the running variance
// divides it, and a channel with gamma 0 scores 0.
TEST(ChannelStats, StandardizedVarianceIgnoresTheAffineAndDividesByRunningVariance) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  Dataset data{torch::randint(0, 255, {24, 1, 28, 28}).to(torch::kUInt8),
               torch::zeros({24}, torch::kLong)};
  const size_t last = model->conv_layers().size() - 1;  // layer4.1.conv2, 32 channels
  auto measure = [&](ChannelStat stat) {
    return measure_channels(model, data, {{0.5}, {0.5}}, torch::kCPU, {last},
                            {stat, 0.5, 8})[0];
  };
  const auto output0 = measure(ChannelStat::kVariance);
  const auto standard0 = measure(ChannelStat::kStandardizedVariance);
  {
    torch::NoGradGuard no_grad;
    auto& bn = model->conv_layers()[last].bn;
    bn->weight[0].mul_(5);
    bn->bias[0].add_(3);
    bn->running_var[1].mul_(100);
    bn->weight[2].zero_();
  }
  const auto output1 = measure(ChannelStat::kVariance);
  const auto standard1 = measure(ChannelStat::kStandardizedVariance);
  ASSERT_GT(standard0[0].item<float>(), 0);
  EXPECT_NEAR(standard1[0].item<float>(), standard0[0].item<float>(),
              1e-3 * standard0[0].item<float>());
  EXPECT_GT((output1[0] - output0[0]).abs().item<float>(),
            0.1 * output0[0].item<float>());
  EXPECT_NEAR(standard1[1].item<float>(), standard0[1].item<float>() / 100,
              1e-3 * standard0[1].item<float>());
  EXPECT_EQ(standard1[2].item<float>(), 0);
  EXPECT_TRUE(torch::allclose(standard1.slice(0, 3), standard0.slice(0, 3)));
}

}  // namespace
}  // namespace fedvar::plugins

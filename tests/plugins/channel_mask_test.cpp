#include "plugins/channel_mask.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fedvar::plugins {
namespace {

ConvBn layer_named(ResNet18& model, const std::string& name) {
  for (auto& c : model->conv_layers())
    if (c.name == name) return c;
  return {};
}

// purify() zeroes a channel's filter, BN weight and bias; apply() zeroes them
// again after a training step moved them; counts and the JSON say which.
TEST(ChannelMask, PurifiedChannelsAreZeroAndStayZero) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto layer = layer_named(model, "layer4.1.conv2");
  ASSERT_TRUE(layer.conv);
  ChannelMask mask;
  mask.purify(layer, {3, 7});
  mask.purify(layer, {7, 9});
  EXPECT_EQ(mask.count("layer4.1.conv2"), 3u);
  EXPECT_EQ(mask.total(), 3u);
  EXPECT_TRUE(mask.is_purified("layer4.1.conv2", 9));
  EXPECT_FALSE(mask.is_purified("layer4.1.conv2", 4));
  EXPECT_FALSE(mask.is_purified("layer4.1.conv1", 3));
  EXPECT_EQ(mask.to_json()["layer4.1.conv2"], (std::vector<int64_t>{3, 7, 9}));
  auto zero = [&](int64_t ch) {
    return layer.conv->weight[ch].abs().sum().item<float>() == 0.f &&
           layer.bn->weight[ch].item<float>() == 0.f &&
           layer.bn->bias[ch].item<float>() == 0.f;
  };
  for (int64_t ch : {3, 7, 9}) EXPECT_TRUE(zero(ch)) << ch;
  EXPECT_FALSE(zero(4));
  {
    torch::NoGradGuard no_grad;
    layer.conv->weight.add_(0.5);
    layer.bn->weight.add_(0.5);
    layer.bn->bias.add_(0.5);
  }
  EXPECT_FALSE(zero(3));
  mask.apply();
  for (int64_t ch : {3, 7, 9}) EXPECT_TRUE(zero(ch)) << ch;
  EXPECT_FALSE(zero(4));
}

}  // namespace
}  // namespace fedvar::plugins

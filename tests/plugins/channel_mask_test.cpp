#include "plugins/channel_mask.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/model_io.h"
#include "plugins/channel_stats.h"
#include "plugins/fine_tune.h"
#include "plugins/registry.h"
#include "plugins/vardefense.h"
#include "tests/support/random_context.h"

namespace fedvar::plugins {
namespace {

ConvBn layer_named(ResNet18& model, const std::string& name) {
  for (auto& c : model->conv_layers())
    if (c.name == name) return c;
  ADD_FAILURE() << "no layer " << name;
  return {};
}

torch::Tensor outputs(ResNet18& model, const torch::Tensor& x, bool train) {
  model->train(train);
  torch::NoGradGuard no_grad;
  return model->forward(x);
}

// A few SGD steps on random data, as a client's round would take.
void train_steps(ResNet18& model, int steps) {
  torch::manual_seed(5);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.05));
  for (int s = 0; s < steps; ++s) {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(torch::randn({8, 1, 28, 28})),
                                         torch::randint(0, 10, {8}))
        .backward();
    sgd.step();
  }
}

// A revived channel computes the same 0 as a purified one, in eval and in
// train mode, but training reaches it again: a conv1 channel through its
// column of conv2 (zeroed, with BN weight 1 behind a fresh filter), a conv2
// channel through its BN weight (0, behind a fresh filter). Purified and not
// revived, neither gets a gradient.
TEST(ChannelMask, ReviveKeepsTheFunctionAndGivesTheChannelBackItsGradient) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto conv1 = layer_named(model, "layer4.0.conv1");
  auto conv2 = layer_named(model, "layer4.0.conv2");
  const std::vector<int64_t> channels = {2, 7, 11};
  ChannelMask mask;
  mask.purify(conv1, channels);
  mask.purify(conv2, channels);
  ResNet18 dead = clone_model(model);

  mask.revive(model->conv_layers(), 7);
  const auto fan_in = static_cast<double>(conv1.conv->weight[0].numel());
  for (int64_t c : channels) {
    for (const auto& layer : {conv1, conv2}) {
      const auto filter = layer.conv->weight[c];
      EXPECT_GT(filter.abs().max().item<float>(), 0.f) << layer.name << " " << c;
      EXPECT_LE(filter.abs().max().item<float>(), 1.0 / std::sqrt(fan_in)) << c;
      EXPECT_EQ(layer.bn->bias[c].item<float>(), 0.f);
      EXPECT_EQ(layer.bn->running_mean[c].item<float>(), 0.f);
      EXPECT_EQ(layer.bn->running_var[c].item<float>(), 1.f);
    }
    EXPECT_EQ(conv1.bn->weight[c].item<float>(), 1.f);
    EXPECT_EQ(conv2.bn->weight[c].item<float>(), 0.f);
    EXPECT_EQ(conv2.conv->weight.select(1, c).abs().max().item<float>(), 0.f);
  }
  EXPECT_EQ(mask.total(), 2 * channels.size());  // still purified as far as the hook goes

  auto x = torch::randn({6, 1, 28, 28});
  EXPECT_TRUE(
      torch::allclose(outputs(model, x, false), outputs(dead, x, false), 1e-5, 1e-6));
  EXPECT_TRUE(
      torch::allclose(outputs(model, x, true), outputs(dead, x, true), 1e-5, 1e-6));

  auto y = torch::randint(0, 10, {6});
  for (ResNet18* m : {&model, &dead}) {
    (*m)->train();
    (*m)->zero_grad();
    torch::nn::functional::cross_entropy((*m)->forward(x), y).backward();
  }
  auto dead_conv2 = layer_named(dead, "layer4.0.conv2");
  for (int64_t c : channels) {
    EXPECT_GT(conv2.conv->weight.grad().select(1, c).abs().max().item<float>(), 0.f) << c;
    EXPECT_NE(conv2.bn->weight.grad()[c].item<float>(), 0.f) << c;
    EXPECT_EQ(dead_conv2.conv->weight.grad().select(1, c).abs().max().item<float>(), 0.f);
    EXPECT_EQ(dead_conv2.bn->weight.grad()[c].item<float>(), 0.f) << c;
  }
}

// revive=1 changes no prediction of the purified model, and after a few
// steps of training (a federation's round) its purified channels are no
// longer dead to the next measurement (variance > 0): the next hook scores
// them like any other channel instead of purifying them again first.
// Without it they stay at variance 0.
TEST(ChannelMask, VarDefenseReviveChangesNoPredictionAndLeavesNoDeadChannel) {
  auto run = [](const std::string& revive) {
    torch::manual_seed(0);
    ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
    auto ctx = testing::random_context(40);
    auto defense = make_defense(
        "vardefense:layers=1,steps=2,start=0.1,max=0.2,step_epochs=0,final_epochs=1,"
        "batch_size=16,holdout=0.25,revive=" +
        revive);
    EXPECT_TRUE(defense.ok());
    auto report = (*defense)->apply(model, ctx);
    EXPECT_TRUE(report.ok()) << report.status().message();
    EXPECT_EQ((*report)["options"]["revive"].get<bool>(), revive == "1");
    return std::make_pair(model, *report);
  };
  auto [dead, report0] = run("0");
  auto [revived, report1] = run("1");
  EXPECT_EQ(report0["pruned"], report1["pruned"]);
  auto purified = report1["pruned"]["layer4.1.conv2"].get<std::vector<int64_t>>();
  ASSERT_FALSE(purified.empty());

  torch::manual_seed(3);
  auto x = torch::randn({8, 1, 28, 28});
  EXPECT_TRUE(
      torch::allclose(outputs(dead, x, false), outputs(revived, x, false), 1e-5, 1e-6));

  train_steps(dead, 3);
  train_steps(revived, 3);
  auto ctx = testing::random_context(40);
  auto variance = [&](ResNet18& model) {
    const auto indices = purified_layer_indices(model, 1);
    StatOptions stat{ChannelStat::kStandardizedVariance, 0.9, 16};
    return measure_channels(model, ctx.clean, ctx.normalization, ctx.device, indices,
                            stat);
  };
  const auto v_dead = variance(dead), v_revived = variance(revived);
  size_t checked = 0;
  for (size_t k = 0; k < 2; ++k) {
    const std::string name = k == 0 ? "layer4.1.conv1" : "layer4.1.conv2";
    for (int64_t c : report1["pruned"][name].get<std::vector<int64_t>>()) {
      EXPECT_EQ(v_dead[k][c].item<float>(), 0.f) << name << " " << c;
      EXPECT_GT(v_revived[k][c].item<float>(), 0.f) << name << " " << c;
      ++checked;
    }
  }
  EXPECT_GT(checked, purified.size());
}

}  // namespace
}  // namespace fedvar::plugins

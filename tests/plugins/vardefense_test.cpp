#include "plugins/vardefense.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/model_io.h"
#include "plugins/batchnorm_stats.h"
#include "plugins/channel_stats.h"
#include "plugins/options.h"
#include "plugins/registry.h"
#include "tests/support/random_context.h"
#include "tests/support/test_util.h"

namespace fedvar::plugins {
namespace {

// Builds the defense `spec` names and applies it to `model`.
Result<nlohmann::json> run_defense(const std::string& spec, ResNet18& model,
                                   const DefenseContext& ctx) {
  FEDVAR_ASSIGN_OR_RETURN(auto defense, make_defense(spec));
  return defense->apply(model, ctx);
}

TEST(VarDefense, LayerSelectionTakesTheLastTwoNResidualConvs) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto convs = model->conv_layers();
  auto names = [&](int n) {
    std::vector<std::string> out;
    for (size_t i : purified_layer_indices(model, n)) out.push_back(convs[i].name);
    return out;
  };
  EXPECT_EQ(names(1), (std::vector<std::string>{"layer4.1.conv1", "layer4.1.conv2"}));
  EXPECT_EQ(names(2), (std::vector<std::string>{"layer4.0.conv1", "layer4.0.conv2",
                                                "layer4.1.conv1", "layer4.1.conv2"}));
  EXPECT_EQ(names(3).front(), "layer3.1.conv1");
}

// Auto-alpha tries alpha from the given one upward (x sqrt 10) and stops at
// the first within budget: a budget of 100 points is met by the first trial;
// a zero budget against a holdout ACC of 100 % before is met only by a trial
// that keeps every holdout image right, else the search runs up to 1e5.
TEST(VarDefense, AutoAlphaStopsAtTheFirstAlphaWithinBudget) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto ctx = testing::random_context(40);
  const std::string fast =
      "layers=1,share_steps=1,step_epochs=0,final_epochs=1,batch_size=16,holdout=0.25,";
  auto report = run_defense("vardefense:" + fast + "alpha=50,acc_budget=100", model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ((*report)["alpha_trials"].size(), 1u);
  EXPECT_DOUBLE_EQ((*report)["alpha"].get<double>(), 50.0);
  EXPECT_TRUE((*report)["budget_met"].get<bool>());

  // Labels = what the model predicts, so the holdout ACC before is 100 %
  // and a zero budget fails unless the purified model is still perfect.
  {
    torch::NoGradGuard no_grad;
    model->eval();
    auto x = normalize(to_unit_float(ctx.clean.images, torch::kCPU), ctx.normalization);
    ctx.clean.labels = model->forward(x).argmax(1);
  }
  report = run_defense("vardefense:" + fast + "alpha=1000,acc_budget=0", model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  const auto& trials = (*report)["alpha_trials"];
  ASSERT_GE(trials.size(), 2u);
  EXPECT_DOUBLE_EQ(trials[0]["alpha"].get<double>(), 1000.0);
  for (size_t i = 1; i < trials.size(); ++i) {
    EXPECT_NEAR(trials[i]["alpha"].get<double>() / trials[i - 1]["alpha"].get<double>(),
                std::sqrt(10.0), 1e-9);
  }
  // It stopped at the first trial within budget, or ran to the last.
  const auto& last = trials.back();
  const bool met = (*report)["budget_met"].get<bool>();
  EXPECT_EQ(met, last["holdout_acc"].get<double>() >= 100.0);
  if (!met) {
    EXPECT_NEAR(last["alpha"].get<double>(), 1e5, 1.0);
  }
  EXPECT_DOUBLE_EQ((*report)["alpha"].get<double>(), last["alpha"].get<double>());
}

// Channels already dead on clean data (constant output, as after an earlier
// federated round's purification) are purified at the first step even when
// they outnumber the quantile (ties at variance 0).
TEST(VarDefense, DeadChannelsArePurifiedEvenWhenTheyOutnumberTheQuantile) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  ConvBn target;
  for (auto& c : model->conv_layers())
    if (c.name == "layer4.1.conv2") target = c;
  ASSERT_EQ(target.conv->weight.size(0), 32);
  const std::vector<int64_t> dead = {0, 3, 5, 8, 13, 17, 21, 26, 30, 31};
  {
    torch::NoGradGuard no_grad;
    for (int64_t ch : dead) {
      target.conv->weight[ch].zero_();
      target.bn->weight[ch].zero_();
      target.bn->bias[ch].fill_(0.5);  // relu(0.5): constant, variance 0
    }
  }
  auto ctx = testing::random_context(40);
  auto report = run_defense(
      "vardefense:layers=1,share_steps=1,share_start=0.1,share_max=0.1,step_epochs=0,"
      "final_epochs=0,"
      "batch_size=16,holdout=0.25",
      model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  auto pruned = (*report)["pruned"]["layer4.1.conv2"].get<std::vector<int64_t>>();
  for (int64_t ch : dead) {
    EXPECT_NE(std::find(pruned.begin(), pruned.end(), ch), pruned.end()) << ch;
  }
  EXPECT_EQ(target.bn->bias[dead[0]].item<float>(), 0.f);
}

// One threshold step (tau 0.1: 3 of 32 channels) on layer4.1.conv2 of a
// width-4 model after `tweak` changed that conv's BatchNorm; returns the
// channels purified there, sorted, and the report.
std::pair<std::vector<int64_t>, nlohmann::json> purify_last_conv(
    const std::function<void(torch::nn::BatchNorm2d&)>& tweak,
    const std::string& options) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto ctx = testing::random_context(40);
  recalibrate_batchnorm(model, ctx.clean, ctx, 16);
  for (auto& c : model->conv_layers()) {
    torch::NoGradGuard no_grad;
    if (c.name == "layer4.1.conv2") tweak(c.bn);
  }
  auto report = run_defense(
      "vardefense:layers=1,share_steps=1,share_start=0.1,share_max=0.1,step_epochs=0,"
      "final_epochs=0,"
      "batch_size=16,holdout=0.25," +
          options,
      model, ctx);
  EXPECT_TRUE(report.ok()) << report.status().message();
  if (!report.ok()) return {};
  auto pruned = (*report)["pruned"]["layer4.1.conv2"].get<std::vector<int64_t>>();
  std::sort(pruned.begin(), pruned.end());
  return {pruned, *report};
}

const std::vector<int64_t> kTweaked{1, 2, 3};

// VarDefense measures variance through the BatchNorm statistics the model
// came with, even when recalibrate=1 re-estimates them on the clean set first.
// Channels whose running variance is far above their clean spread (as a
// trigger-only channel's is, when the statistics come from poisoned training)
// look dormant through the original statistics and ordinary after the
// re-estimation.
TEST(VarDefense, MeasuresThroughTheStatisticsTheModelCameWith) {
  auto inflate = [](torch::nn::BatchNorm2d& bn) {
    for (int64_t ch : kTweaked) bn->running_var[ch].mul_(1e4);
  };
  auto [with, report] = purify_last_conv(inflate, "recalibrate=1");
  EXPECT_EQ(with, kTweaked);
  // The report says which schedule ran.
  EXPECT_EQ(report["options"]["recalibrate"].get<int>(), 1);
  EXPECT_EQ(report["options"]["step_epochs"].get<int>(), 0);
}

// A benign channel with a small BN scale has a small output variance: the
// paper's score (standardize=0) purifies it, the standardized one does not.
TEST(VarDefense, StandardizedScoreIsBlindToTheBnScale) {
  auto shrink = [](torch::nn::BatchNorm2d& bn) {
    for (int64_t ch : kTweaked) bn->weight[ch].mul_(1e-2);
  };
  auto [paper, report0] = purify_last_conv(shrink, "standardize=0");
  EXPECT_EQ(report0["options"]["standardize"].get<int>(), 0);
  EXPECT_EQ(paper, kTweaked);
  auto [standardized, report] = purify_last_conv(shrink, "standardize=1");
  EXPECT_EQ(report["options"]["standardize"].get<int>(), 1);
  EXPECT_EQ(standardized.size(), 3u);
  EXPECT_NE(standardized, kTweaked);
}

// restore_norms=1 gives every live filter of the purified layers back the
// norm it came with (the L1 term shrank it) and changes no prediction: BN
// divides the scale out, its running statistics scaled along.
TEST(VarDefense, RestoreNormsKeepsFilterNormsAndPredictions) {
  auto run = [](bool restore, ResNet18& original) {
    torch::manual_seed(0);
    ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
    auto ctx = testing::random_context(40);
    recalibrate_batchnorm(model, ctx.clean, ctx, 16);
    original = clone_model(model);
    auto report = run_defense(
        "vardefense:layers=1,share_steps=2,final_epochs=2,batch_size=16,holdout=0.25,"
        "alpha=1,"
        "restore_norms=" +
            std::to_string(restore ? 1 : 0),
        model, ctx);
    EXPECT_TRUE(report.ok()) << report.status().message();
    EXPECT_EQ((*report)["options"]["restore_norms"].get<int>(), restore ? 1 : 0);
    return model;
  };
  ResNet18 original{nullptr};
  auto shrunk = run(false, original);
  auto restored = run(true, original);
  const auto last = original->conv_layers().size() - 1;  // layer4.1.conv2
  auto norms = [&](ResNet18& m) {
    return m->conv_layers()[last].conv->weight.detach().flatten(1).norm(2, 1);
  };
  const auto before = norms(original), small = norms(shrunk), back = norms(restored);
  const auto live = small > 0;
  ASSERT_GT(live.sum().item<int64_t>(), 0);
  // Without it the strong L1 (alpha 1) shrank the filters; with it they are back.
  EXPECT_TRUE((small.index({live}) < 0.9 * before.index({live})).all().item<bool>());
  EXPECT_TRUE(torch::allclose(back.index({live}), before.index({live}), 1e-4, 1e-6));
  EXPECT_TRUE((back.index({~live}) == 0).all().item<bool>());
  torch::manual_seed(3);
  auto x = torch::randn({8, 1, 28, 28});
  shrunk->eval();
  restored->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(shrunk->forward(x), restored->forward(x), 1e-3, 1e-4));
}

// How far a defense run moves the stem conv's weights (largest change) on a
// width-4 model and random data: the stem is never purified, so this tells
// whether any fine-tuning epoch ran at a non-zero lr.
float stem_change(const std::string& spec) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto before = model->conv_layers().front().conv->weight.clone();
  auto ctx = testing::random_context(40);
  auto report = run_defense(spec, model, ctx);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return (model->conv_layers().front().conv->weight - before).abs().max().item<float>();
}

// preset=one-shot trains no weight: every conv filter of a width-16 model is
// either as it was or zero (purified), and it purifies at most 9 % of each
// purified layer.
TEST(VarDefense, OneShotPresetPurifiesWithoutTraining) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 16});
  std::vector<torch::Tensor> before;
  for (const auto& layer : model->conv_layers())
    before.push_back(layer.conv->weight.clone());
  auto ctx = testing::random_context(40);
  auto report = run_defense("vardefense:preset=one-shot", model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_GT((*report)["pruned_total"].get<int>(), 0);
  const auto convs = model->conv_layers();
  for (size_t i = 0; i < convs.size(); ++i) {
    const auto w = convs[i].conv->weight.detach().flatten(1);
    const auto zero = (w == 0).all(1);
    const auto same = (w == before[i].flatten(1)).all(1);
    EXPECT_TRUE((zero | same).all().item<bool>()) << convs[i].name;
    EXPECT_LE(zero.sum().item<int64_t>(), static_cast<int64_t>(0.09 * w.size(0)))
        << convs[i].name;
  }
}

// By default VarDefense fine-tunes after each threshold step (the paper's
// schedule); step_epochs=0 purifies without.
TEST(VarDefense, StepEpochsFineTuneBetweenSteps) {
  const VarDefenseOptions defaults;
  EXPECT_EQ(defaults.step_epochs, 1);
  EXPECT_FALSE(defaults.recalibrate);
  EXPECT_TRUE(defaults.standardize);
  EXPECT_FALSE(defaults.restore_norms);
  EXPECT_EQ(defaults.share_max, 0.15);
  // With no final epochs only the step epochs can move the stem's weights.
  const std::string spec =
      "vardefense:layers=1,share_steps=2,final_epochs=0,batch_size=16,holdout=0.25";
  EXPECT_GT(stem_change(spec), 1e-4f);
  EXPECT_EQ(stem_change(spec + ",step_epochs=0,recalibrate=1"), 0.f);
}

// Full width so that torchvision's resnet18 takes the file as it is.
TEST(VarDefense, PurifiedChannelsStayZeroAndFileLoadsStrictInTorchvision) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 64});
  auto ctx = testing::random_context(48);
  auto report = run_defense(
      "vardefense:layers=1,share_steps=2,share_start=0.5,share_max=1,"
      "final_epochs=1,batch_size=16,holdout=0.25",
      model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_GT((*report)["pruned_total"].get<int>(), 0);
  // After the fine-tuning steps, every purified channel is still exactly 0.
  auto convs = model->conv_layers();
  for (auto& [layer, channels] : (*report)["pruned"].items()) {
    for (auto& c : convs) {
      if (c.name != layer) continue;
      for (int64_t ch : channels.get<std::vector<int64_t>>()) {
        EXPECT_EQ(c.conv->weight[ch].abs().sum().item<float>(), 0.f)
            << layer << " " << ch;
        EXPECT_EQ(c.bn->weight[ch].item<float>(), 0.f);
        EXPECT_EQ(c.bn->bias[ch].item<float>(), 0.f);
      }
    }
  }
  if (!testing::python_torch_available()) GTEST_SKIP() << "no python3-torch";
  testing::TempDir dir;
  ASSERT_TRUE(save_resnet(dir.file("p.safetensors"), model, ctx.normalization).ok());
  auto r = testing::run_command("/usr/bin/python3 " + std::string(FEDVAR_SOURCE_DIR) +
                                "/tests/python/resnet_interop.py strict " +
                                dir.file("p.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto zero = nlohmann::json::parse(r.output);
  for (auto& [layer, channels] : (*report)["pruned"].items()) {
    EXPECT_GE(zero[layer].get<size_t>(), channels.size()) << layer;
  }
}

}  // namespace
}  // namespace fedvar::plugins

#include "aggregator/after_hooks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "core/model_io.h"
#include "core/normalization.h"
#include "plugins/registry.h"
#include "tests/support/random_context.h"

namespace fedvar::aggregator {
namespace {

// A clean set the model gets exactly half right: its own prediction as the
// label on even images, another class on odd ones. Which images a split
// holds out then decides the holdout ACC.
plugins::DefenseContext half_right_context(ResNet18& model) {
  torch::manual_seed(1);
  auto ctx = testing::random_context(200);
  torch::NoGradGuard no_grad;
  model->eval();
  auto x = normalize(to_unit_float(ctx.clean.images, torch::kCPU), ctx.normalization);
  auto predicted = model->forward(x).argmax(1);
  auto odd = torch::arange(200) % 2 == 1;
  ctx.clean.labels = torch::where(odd, (predicted + 1) % 10, predicted);
  return ctx;
}

// Every round's defense holds out the same clean images (a fresh shuffle seed
// each round, one split seed for the run): otherwise a later round's report
// would measure on images an earlier round's defense trained on.
TEST(AfterHooks, DefensesHoldOutTheSameCleanImagesEveryRound) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto context = half_right_context(model);
  context.seed = 7;

  // The check has power: splits with other seeds give other holdout ACCs.
  std::set<double> by_seed;
  for (uint64_t seed = 8; seed < 12; ++seed) {
    auto defense = plugins::make_defense("fine-tuning:epochs=0");
    ASSERT_TRUE(defense.ok());
    auto ctx = context;
    ctx.seed = seed;
    auto report = (*defense)->apply(model, ctx);
    ASSERT_TRUE(report.ok());
    by_seed.insert(report.value()["acc_before"].get<double>());
  }
  ASSERT_GT(by_seed.size(), 1u);

  auto hook = make_after_hook("fine-tuning:epochs=0", context);
  ASSERT_TRUE(hook.ok()) << hook.status().message();
  StateDict global = resnet_state(model).tensors;
  std::vector<nlohmann::json> reports;
  for (int round = 1; round <= 4; ++round) {
    RoundContext ctx{round, &global, nullptr, static_cast<uint64_t>(round)};
    auto report = (*hook)->apply(global, ctx);
    ASSERT_TRUE(report.ok()) << report.status().message();
    reports.push_back(*report);
  }
  for (const auto& r : reports) {
    EXPECT_EQ(r["holdout_seed"], reports.front()["holdout_seed"]);
    EXPECT_EQ(r["acc_before"], reports.front()["acc_before"]);
  }
}

// CRFL clips the parameters' L2 norm to `clip` and adds noise of std
// `sigma`; BatchNorm statistics are left alone; the same seed gives the same
// noise.
TEST(AfterHooks, CrflClipsTheParameterNormAndAddsSeededNoise) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  const StateDict start = resnet_state(model).tensors;
  auto norm_of = [](const StateDict& s) {
    double sq = 0;
    for (const auto& [name, t] : s)
      if (at::isFloatingType(t.scalar_type()) && !is_buffer_name(name))
        sq += t.to(torch::kFloat64).square().sum().item<double>();
    return std::sqrt(sq);
  };
  ASSERT_GT(norm_of(start), 2.0);
  auto hook = make_after_hook("crfl:clip=1,sigma=0", {});
  ASSERT_TRUE(hook.ok()) << hook.status().message();
  StateDict clipped = start;
  RoundContext ctx{1, &clipped, nullptr, 5};
  ASSERT_TRUE((*hook)->apply(clipped, ctx).ok());
  EXPECT_NEAR(norm_of(clipped), 1.0, 1e-4);
  EXPECT_TRUE(torch::equal(clipped.at("bn1.running_var"), start.at("bn1.running_var")));
  auto noisy = make_after_hook("crfl:clip=1000,sigma=0.1", {});
  StateDict a = start, b = start;
  ASSERT_TRUE((*noisy)->apply(a, ctx).ok());
  ASSERT_TRUE((*noisy)->apply(b, ctx).ok());
  EXPECT_TRUE(torch::equal(a.at("conv1.weight"), b.at("conv1.weight")));
  const double spread =
      (a.at("conv1.weight") - start.at("conv1.weight")).std().item<double>();
  EXPECT_NEAR(spread, 0.1, 0.03);
  EXPECT_FALSE(make_after_hook("crfl:clip=0", {}).ok());
  EXPECT_FALSE(make_after_hook("nonsense", {}).ok());
}

}  // namespace
}  // namespace fedvar::aggregator

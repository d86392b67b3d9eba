// The Strategy's phases on fixed state dicts: six honest updates near the
// global model and one attacker whose delta is large and points elsewhere
// (a model-replacement update). FedAvg follows the attacker; each robust rule
// does not. Bad specs and impossible rounds are clear errors.
#include "aggregator/strategy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "aggregator/aggregation_rules.h"
#include "aggregator/strategy_specs.h"
#include "aggregator/update_filters.h"

namespace fedvar::aggregator {
namespace {

constexpr int kHonest = 6;

StateDict global_state() {
  return {{"layer.weight", torch::zeros({64})},
          {"bn.running_var", torch::ones({4})},
          {"bn.num_batches_tracked", torch::tensor(int64_t{10})}};
}

// Honest deltas: small, around a common direction; the attacker's: 10 x
// larger and opposite.
std::vector<ClientUpdate> round_updates() {
  torch::manual_seed(3);
  const auto direction = torch::ones({64}) * 0.1;
  std::vector<ClientUpdate> updates;
  for (int i = 0; i <= kHonest; ++i) {
    const bool attacker = i == kHonest;
    StateDict s = global_state();
    s["layer.weight"] =
        attacker ? -10 * direction : direction + 0.02 * torch::randn({64});
    s["bn.running_var"] = torch::ones({4}) * (attacker ? 5.0 : 1.1);
    s["bn.num_batches_tracked"] = torch::tensor(int64_t{12});
    updates.push_back({attacker ? "attacker" : "c" + std::to_string(i), s, 100, 1.0});
  }
  return updates;
}

struct Aggregated {
  std::optional<StateDict> global;
  std::vector<Verdict> verdicts;
};

// `expected`: the updates the round is told to expect (0: unknown, so its
// matrix of delta rows grows as they arrive).
Aggregated run(const StrategySpecs& specs, int64_t expected = 0) {
  auto strategy = make_strategy(specs, {});
  EXPECT_TRUE(strategy.ok()) << strategy.status().message();
  const StateDict global = global_state();
  const protocol::TrainingConfig training;
  const RoundContext ctx{1, &global, &training, 11, expected};
  auto round = (*strategy)->start_round(ctx);
  for (auto& u : round_updates()) EXPECT_TRUE(round->add(std::move(u)).ok());
  Aggregated out;
  auto result = round->finish(out.verdicts);
  EXPECT_TRUE(result.ok()) << result.status().message();
  if (result.ok()) out.global = *result;
  return out;
}

double mean_weight(const Aggregated& a) {
  return a.global->at("layer.weight").mean().item<double>();
}

TEST(Strategy, FedAvgFollowsTheAttackerAndTheRobustRulesDoNot) {
  const auto fedavg = run({{}, "fedavg", {}});
  ASSERT_TRUE(fedavg.global);
  EXPECT_LT(mean_weight(fedavg), 0.0);  // (6 x 0.1 - 10 x 0.1) / 7
  EXPECT_NEAR(mean_weight(fedavg), (kHonest * 0.1 - 1.0) / 7, 0.01);
  EXPECT_EQ(fedavg.global->at("bn.num_batches_tracked").item<int64_t>(), 12);
  for (const char* rule : {"median", "trimmed-mean:beta=0.2", "krum:f=1",
                           "multi-krum:f=1,m=3", "bulyan:f=1"}) {
    const auto robust = run({{}, rule, {}});
    ASSERT_TRUE(robust.global) << rule;
    EXPECT_NEAR(mean_weight(robust), 0.1, 0.02) << rule;
    EXPECT_LT(robust.global->at("bn.running_var").max().item<float>(), 2.0f) << rule;
  }
}

TEST(Strategy, BeforeRulesExcludeOrClipTheAttackerAndSayWhy) {
  const auto flame = run({{"flame:lambda=0"}, "fedavg", {}});
  ASSERT_TRUE(flame.global);
  EXPECT_NEAR(mean_weight(flame), 0.1, 0.02);
  bool attacker_excluded = false;
  for (const auto& v : flame.verdicts) {
    if (v.action != "excluded") continue;
    EXPECT_EQ(v.rule, "flame");
    EXPECT_FALSE(v.reason.empty());
    attacker_excluded |= v.client_id == "attacker";
  }
  EXPECT_TRUE(attacker_excluded);

  const auto clipped = run({{"norm-clip:bound=1"}, "fedavg", {}});
  ASSERT_TRUE(clipped.global);
  ASSERT_EQ(clipped.verdicts.size(), 1u);  // only the attacker's delta is above 1
  EXPECT_EQ(clipped.verdicts[0].client_id, "attacker");
  EXPECT_EQ(clipped.verdicts[0].action, "clipped");
  EXPECT_GT(mean_weight(clipped), mean_weight(run({{}, "fedavg", {}})));
}

// A later before-rule sees only the updates the earlier ones kept: norm
// clipping after FLAME never names the attacker FLAME excluded.
TEST(Strategy, ALaterBeforeRuleSeesOnlyWhatTheEarlierKept) {
  const auto both = run({{"flame:lambda=0", "norm-clip:bound=0.01"}, "fedavg", {}});
  ASSERT_TRUE(both.global);
  int clipped = 0;
  for (const auto& v : both.verdicts) {
    if (v.rule != "norm-clip") continue;
    ++clipped;
    EXPECT_NE(v.client_id, "attacker");
  }
  EXPECT_GE(clipped, kHonest / 2 + 1);  // the honest majority, each above 0.01
}

// FLAME worked by hand: six honest deltas along one direction with norms 1..6
// and an attacker's of norm 100 against it. The attacker is excluded; the
// median of all seven norms is 4, so the admitted deltas are clipped to
// 1, 2, 3, 4, 4, 4 and their mean is 3 along the direction; then noise of
// std lambda x 4 on every parameter (none on BatchNorm statistics).
TEST(Strategy, FlameClipsToTheMedianNormAndAddsNoiseOfLambdaTimesIt) {
  const auto u = torch::ones({4096}) / 64.0;  // unit norm
  const StateDict global = {{"w", torch::zeros({4096})},
                            {"bn.running_var", torch::ones({2})}};
  auto updates = [&] {
    std::vector<ClientUpdate> out;
    for (int i = 1; i <= 6; ++i) {
      out.push_back({"c" + std::to_string(i),
                     {{"w", i * u}, {"bn.running_var", torch::ones({2})}},
                     10,
                     1.0});
    }
    out.push_back(
        {"attacker", {{"w", -100 * u}, {"bn.running_var", torch::ones({2})}}, 10, 1.0});
    return out;
  };
  auto aggregate = [&](const std::string& flame) {
    auto strategy = make_strategy({{flame}, "fedavg", {}}, {});
    EXPECT_TRUE(strategy.ok());
    const RoundContext ctx{1, &global, nullptr, 42};
    auto round = (*strategy)->start_round(ctx);
    for (auto& up : updates()) EXPECT_TRUE(round->add(std::move(up)).ok());
    std::vector<Verdict> verdicts;
    auto result = round->finish(verdicts);
    EXPECT_TRUE(result.ok() && result->has_value());
    return std::make_pair(**result, verdicts);
  };
  const auto [exact, verdicts] = aggregate("flame:lambda=0");
  EXPECT_TRUE(torch::allclose(exact.at("w"), 3 * u, 1e-5, 1e-6));
  int excluded = 0;
  for (const auto& v : verdicts) excluded += v.action == "excluded";
  EXPECT_EQ(excluded, 1);
  EXPECT_EQ(verdicts.front().client_id, "attacker");
  std::set<std::string> clipped;  // the excluded attacker is not clipped
  for (const auto& v : verdicts) {
    if (v.action == "clipped") clipped.insert(v.client_id);
  }
  EXPECT_EQ(clipped, (std::set<std::string>{"c5", "c6"}));
  const auto noisy = aggregate("flame:lambda=0.1").first;
  const double spread = (noisy.at("w") - exact.at("w")).std().item<double>();
  EXPECT_NEAR(spread, 0.1 * 4, 0.02);
  EXPECT_TRUE(torch::equal(noisy.at("bn.running_var"), exact.at("bn.running_var")));
}

// FedAvg streamed (one running sum) and collected give the same model.
TEST(Strategy, StreamedAndCollectedFedAvgAgree) {
  const auto streamed = run({{}, "fedavg", {}});
  const auto collected = run({{"norm-clip:bound=1000"}, "fedavg", {}});
  ASSERT_TRUE(streamed.global && collected.global);
  for (const auto& [name, t] : *streamed.global) {
    EXPECT_TRUE(torch::allclose(t.to(torch::kFloat64),
                                collected.global->at(name).to(torch::kFloat64), 1e-5,
                                1e-6))
        << name;
  }
}

void expect_same_state(const StateDict& a, const StateDict& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, t] : a) {
    EXPECT_EQ(t.scalar_type(), b.at(name).scalar_type()) << what << " " << name;
    EXPECT_TRUE(torch::allclose(t.to(torch::kFloat64), b.at(name).to(torch::kFloat64),
                                1e-6, 1e-7))
        << what << " " << name;
  }
}

// A collecting round flattens each update into a row of one matrix on
// arrival (growing it when more updates come than expected, moving rows up
// when a before-rule excludes some): the rules must give what they give on
// the updates' state dicts.
TEST(Strategy, CollectedRowsGiveWhatTheRulesGiveOnStateDicts) {
  const StateDict global = global_state();
  const protocol::TrainingConfig training;
  const RoundContext ctx{1, &global, &training, 11};
  for (const char* spec : {"fedavg", "median", "trimmed-mean:beta=0.2", "krum:f=1",
                           "multi-krum:f=1,m=3", "bulyan:f=1"}) {
    auto rule = make_aggregation_rule(spec);
    ASSERT_TRUE(rule.ok()) << spec;
    auto direct = (*rule)->aggregate(round_updates(), ctx);
    ASSERT_TRUE(direct.ok()) << spec << ": " << direct.status().message();
    for (int64_t expected : {0, 3, kHonest + 1}) {
      const auto collected = run({{"norm-clip:bound=1000"}, spec, {}}, expected);
      ASSERT_TRUE(collected.global) << spec;
      expect_same_state(*direct, *collected.global,
                        std::string(spec) + ", expected " + std::to_string(expected));
    }
  }
  // FLAME excludes the attacker and some honest updates (their rows leave the
  // matrix) before the median.
  auto flame = make_update_filter("flame", {});
  auto median = make_aggregation_rule("median");
  ASSERT_TRUE(flame.ok() && median.ok());
  auto updates = round_updates();
  ASSERT_TRUE((*flame)->filter(updates, ctx).ok());
  updates.erase(std::remove_if(updates.begin(), updates.end(),
                               [](const ClientUpdate& u) { return !(u.weight > 0); }),
                updates.end());
  ASSERT_FALSE(updates.empty());
  ASSERT_NE(updates.back().client_id, "attacker");  // so rows did move up
  auto direct = (*median)->aggregate(updates, ctx);
  ASSERT_TRUE(direct.ok());
  ASSERT_TRUE((*flame)->after_aggregation(*direct, ctx).ok());
  for (int64_t expected : {0, kHonest + 1}) {
    const auto collected = run({{"flame"}, "median", {}}, expected);
    ASSERT_TRUE(collected.global);
    expect_same_state(*direct, *collected.global, "flame + median");
  }
}

TEST(Strategy, BadSpecsAndImpossibleRoundsAreClearErrors) {
  for (const auto& [specs, expected] : std::vector<std::pair<StrategySpecs, std::string>>{
           {{{}, "median:x=1", {}}, "median takes no options"},
           {{{}, "average", {}}, "unknown aggregation rule 'average'"},
           {{{"flame:lambda=-1"}, "fedavg", {}}, "lambda"},
           {{{"norm-clip"}, "fedavg", {}}, "bound=B"},
           {{{"fltrust"}, "fedavg", {}}, "clean set"},
           {{{"magic"}, "fedavg", {}}, "unknown before-aggregation rule"},
           {{{}, "fedavg", {"vardefense:nope=1"}}, "nope"},
           {{{}, "krum:f=-1", {}}, "f="},
       }) {
    auto strategy = make_strategy(specs, {});
    ASSERT_FALSE(strategy.ok()) << expected;
    EXPECT_EQ(strategy.status().code(), Code::kInvalidArgument);
    EXPECT_NE(strategy.status().message().find(expected), std::string::npos)
        << strategy.status().message();
  }
  // Krum needs n > 2f + 2: seven updates and f = 3 cannot run.
  auto strategy = make_strategy({{}, "krum:f=3", {}}, {});
  ASSERT_TRUE(strategy.ok());
  const StateDict global = global_state();
  const RoundContext ctx{1, &global, nullptr, 0};
  auto round = (*strategy)->start_round(ctx);
  for (auto& u : round_updates()) ASSERT_TRUE(round->add(std::move(u)).ok());
  std::vector<Verdict> verdicts;
  auto result = round->finish(verdicts);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("2f"), std::string::npos)
      << result.status().message();
  // An update of another layout is refused before any rule sees it.
  auto next = (*strategy)->start_round(ctx);
  EXPECT_FALSE(next->add({"x", {{"other", torch::zeros({1})}}, 1, 1.0}).ok());
  EXPECT_EQ(next->updates(), 0);
}

// When a before-rule excludes every update, the round makes no new model.
TEST(Strategy, EveryUpdateExcludedLeavesTheModelUnchanged) {
  class ExcludeAll : public UpdateFilter {
   public:
    std::string name() const override { return "exclude-all"; }
    Result<std::vector<Verdict>> filter(std::vector<ClientUpdate>& updates,
                                        const RoundContext&) override {
      for (auto& u : updates) u.weight = 0;
      return std::vector<Verdict>{};
    }
  };
  std::vector<std::unique_ptr<UpdateFilter>> before;
  before.push_back(std::make_unique<ExcludeAll>());
  Strategy strategy(std::move(before), make_aggregation_rule("median").value(), {});
  const StateDict global = global_state();
  const RoundContext ctx{1, &global, nullptr, 0};
  auto round = strategy.start_round(ctx);
  for (auto& u : round_updates()) ASSERT_TRUE(round->add(std::move(u)).ok());
  std::vector<Verdict> verdicts;
  auto result = round->finish(verdicts);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->has_value());
  EXPECT_EQ(strategy.describe(), "before: exclude-all; on: median; after: -");
}

}  // namespace
}  // namespace fedvar::aggregator

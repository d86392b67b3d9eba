// Defense chains: the spec's split, the registry's errors, and that a chain
// is exactly its steps run one after the other on the same clean set.
#include "plugins/chain.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model_io.h"
#include "plugins/registry.h"
#include "tests/support/random_context.h"

namespace fedvar::plugins {
namespace {

using Steps = std::vector<std::string>;

TEST(Chain, SplitsAtAPlusBeforeALetterOnly) {
  EXPECT_EQ(split_chain("nad"), Steps({"nad"}));
  EXPECT_EQ(split_chain("vardefense+fst"), Steps({"vardefense", "fst"}));
  EXPECT_EQ(split_chain("vardefense:preset=one-shot+fst:lr=1e+3+anp"),
            Steps({"vardefense:preset=one-shot", "fst:lr=1e+3", "anp"}));
  EXPECT_EQ(split_chain("+fst"), Steps({"", "fst"}));
  EXPECT_EQ(split_chain("fst+"), Steps({"fst+"}));
}

TEST(Chain, RegistryBuildsChainsAndNamesTheBadStep) {
  auto chain = make_defense("fine-tuning:epochs=1+fst:epochs=2");
  ASSERT_TRUE(chain.ok()) << chain.status().message();
  EXPECT_EQ((*chain)->name(), "fine-tuning+fst");
  for (const std::string bad :
       {"vardefense+fst:beta=1", "+fst", "vardefense+nope", "fst+", "vardefense++fst"}) {
    auto r = make_defense(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_NE(make_defense("vardefense+fst:beta=1").status().message().find("beta"),
            std::string::npos);
  EXPECT_NE(make_defense("fine-tuning+nope").status().message().find("nope"),
            std::string::npos);
  std::string long_chain = "nad";
  for (size_t i = 1; i < kMaxChainSteps; ++i) long_chain += "+nad";
  EXPECT_TRUE(make_defense(long_chain).ok());
  auto too_long = make_defense(long_chain + "+nad");
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("at most"), std::string::npos);
  EXPECT_FALSE(make_chain({}).ok());
}

double max_difference(ResNet18& a, ResNet18& b) {
  double d = 0;
  auto sa = a->named_parameters(), sb = b->named_parameters();
  for (const auto& item : sa) {
    d = std::max(d, (item.value() - sb[item.key()]).abs().max().item<double>());
  }
  return d;
}

TEST(Chain, IsItsStepsInSequenceWithOneReportEach) {
  torch::set_num_threads(1);  // bit-identical runs
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto ctx = testing::random_context(60);
  ctx.seed = 3;
  const std::string a = "fine-tuning:epochs=1,batch_size=16";
  const std::string b = "fst:epochs=1,batch_size=16";

  auto by_hand = clone_model(model);
  ASSERT_TRUE(make_defense(a).value()->apply(by_hand, ctx).ok());
  ASSERT_TRUE(make_defense(b).value()->apply(by_hand, ctx).ok());

  auto chained = clone_model(model);
  auto chain = make_defense(a + "+" + b);
  ASSERT_TRUE(chain.ok());
  auto report = (*chain)->apply(chained, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(max_difference(by_hand, chained), 0.0);
  EXPECT_GT(max_difference(model, chained), 0.0);
  EXPECT_EQ((*report)["defense"], "fine-tuning+fst");
  ASSERT_EQ((*report)["steps"].size(), 2u);
  EXPECT_EQ((*report)["steps"][0]["defense"], "fine-tuning");
  EXPECT_EQ((*report)["steps"][1]["defense"], "fst");
  // Both steps held out the chain's images: the first step's ACC before is the chain's.
  EXPECT_EQ((*report)["steps"][0]["acc_before"], (*report)["acc_before"]);
  EXPECT_EQ((*report)["steps"][1]["acc_after"], (*report)["acc_after"]);
  EXPECT_EQ((*report)["options"].size(), 2u);
  EXPECT_EQ((*report)["options"][1]["epochs"], 1);
}

// With different holdout shares the chain judges by the smallest, which lies
// inside every step's holdout (the split is nested): no step trained on it.
TEST(Chain, JudgesByTheSmallestHoldout) {
  torch::manual_seed(1);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  auto ctx = testing::random_context(60);
  auto chain = make_defense(
      "fine-tuning:epochs=1,batch_size=16,holdout=0.3+fst:epochs=1,batch_size=16,holdout="
      "0.1");
  ASSERT_TRUE(chain.ok());
  auto report = (*chain)->apply(model, ctx);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ((*report)["holdout_images"], 6);
  EXPECT_EQ((*report)["steps"][0]["holdout_images"], 18);
  EXPECT_EQ((*report)["steps"][1]["holdout_images"], 6);
  EXPECT_EQ((*report)["acc_after"], (*report)["steps"][1]["acc_after"]);
}

}  // namespace
}  // namespace fedvar::plugins

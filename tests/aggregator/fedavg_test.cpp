// FedAvg is the exact sample-weighted mean of the updates, BN buffers included.
#include "aggregator/fedavg.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>

namespace fedvar::aggregator {
namespace {

StateDict make_state(float weight, float running_mean, int64_t batches) {
  return {{"conv1.weight", torch::full({2, 1, 3, 3}, weight)},
          {"bn1.running_mean", torch::full({2}, running_mean)},
          {"bn1.num_batches_tracked", torch::tensor(batches)}};
}

TEST(FedAvgTest, IsTheSampleWeightedMeanIncludingBnBuffers) {
  const StateDict reference = make_state(0, 0, 0);
  FedAvg fedavg(reference);
  // Different values per element too, so that a mean of means would differ.
  StateDict a = make_state(1, 2, 10);
  a["conv1.weight"] = torch::arange(18, torch::kFloat32).reshape({2, 1, 3, 3});
  StateDict b = make_state(4, -1, 20);
  StateDict c = make_state(-2, 0.5, 31);
  ASSERT_TRUE(fedavg.add(a, 100).ok());
  ASSERT_TRUE(fedavg.add(b, 300).ok());
  ASSERT_TRUE(fedavg.add(c, 600).ok());
  EXPECT_EQ(fedavg.updates(), 3);
  EXPECT_EQ(fedavg.total_weight(), 1000);

  auto mean = fedavg.result();
  ASSERT_TRUE(mean.ok()) << mean.status().message();
  const torch::Tensor expected_weight =
      (a["conv1.weight"] * 100 + b["conv1.weight"] * 300 + c["conv1.weight"] * 600) /
      1000;
  EXPECT_TRUE(torch::allclose(mean->at("conv1.weight"), expected_weight, 1e-6, 1e-6));
  EXPECT_EQ(mean->at("conv1.weight").scalar_type(), torch::kFloat32);
  // running_mean: (2*100 - 1*300 + 0.5*600) / 1000 = 0.2
  EXPECT_TRUE(torch::allclose(mean->at("bn1.running_mean"), torch::full({2}, 0.2f)));
  // num_batches_tracked: weighted mean (10*100 + 20*300 + 31*600)/1000 = 25.6 -> 26,
  // int64
  EXPECT_EQ(mean->at("bn1.num_batches_tracked").scalar_type(), torch::kInt64);
  EXPECT_EQ(mean->at("bn1.num_batches_tracked").item<int64_t>(), 26);
}

TEST(FedAvgTest, OneUpdateIsReturnedUnchanged) {
  FedAvg fedavg(make_state(0, 0, 0));
  const StateDict only = make_state(0.3f, 7, 5);
  ASSERT_TRUE(fedavg.add(only, 42).ok());
  auto mean = fedavg.result();
  ASSERT_TRUE(mean.ok());
  for (const auto& [name, t] : only) EXPECT_TRUE(torch::equal(mean->at(name), t)) << name;
}

TEST(FedAvgTest, RejectsMismatchedUpdatesWithoutAddingThem) {
  FedAvg fedavg(make_state(0, 0, 0));
  StateDict missing = make_state(1, 1, 1);
  missing.erase("bn1.running_mean");
  Status st = fedavg.add(missing, 10);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("bn1.running_mean"), std::string::npos) << st.message();

  StateDict extra = make_state(1, 1, 1);
  extra["fc.weight"] = torch::zeros({1});
  st = fedavg.add(extra, 10);
  EXPECT_NE(st.message().find("fc.weight"), std::string::npos) << st.message();

  StateDict wrong_shape = make_state(1, 1, 1);
  wrong_shape["conv1.weight"] = torch::zeros({2, 1, 5, 5});
  EXPECT_NE(fedavg.add(wrong_shape, 10).message().find("shape"), std::string::npos);

  StateDict wrong_dtype = make_state(1, 1, 1);
  wrong_dtype["conv1.weight"] = wrong_dtype["conv1.weight"].to(torch::kFloat64);
  EXPECT_NE(fedavg.add(wrong_dtype, 10).message().find("dtype"), std::string::npos);

  EXPECT_FALSE(fedavg.add(make_state(1, 1, 1), 0).ok());
  EXPECT_FALSE(fedavg.add(make_state(1, 1, 1), -5).ok());
  EXPECT_EQ(fedavg.updates(), 0);
  EXPECT_EQ(fedavg.result().status().code(), Code::kFailedPrecondition);
}

// Weights are summed in float64: counts near INT64_MAX cannot overflow the
// total (an int64 total wrapped negative and flipped every mean's sign).
TEST(FedAvgTest, HugeSampleCountsDoNotOverflowTheTotal) {
  FedAvg fedavg(make_state(0, 0, 0));
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(fedavg.add(make_state(1, 3, 10), kMax).ok());
  ASSERT_TRUE(fedavg.add(make_state(3, 5, 30), kMax).ok());
  EXPECT_GT(fedavg.total_weight(), 0);
  auto mean = fedavg.result();
  ASSERT_TRUE(mean.ok()) << mean.status().message();
  EXPECT_TRUE(torch::allclose(mean->at("conv1.weight"), torch::full({2, 1, 3, 3}, 2.0f)));
  EXPECT_TRUE(torch::allclose(mean->at("bn1.running_mean"), torch::full({2}, 4.0f)));
  EXPECT_EQ(mean->at("bn1.num_batches_tracked").item<int64_t>(), 20);
}

}  // namespace
}  // namespace fedvar::aggregator

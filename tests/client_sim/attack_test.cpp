// The attacker's schedule and model-replacement scaling.
#include "client_sim/attack.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fedvar::client_sim {
namespace {

TEST(RoundScheduleTest, AllListsAndSpans) {
  auto all = RoundSchedule::parse("all");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->contains(1));
  EXPECT_TRUE(all->contains(1000));

  auto some = RoundSchedule::parse("2,5-7,20-");
  ASSERT_TRUE(some.ok()) << some.status().message();
  for (int r : {2, 5, 6, 7, 20, 21, 500}) EXPECT_TRUE(some->contains(r)) << r;
  for (int r : {1, 3, 4, 8, 19}) EXPECT_FALSE(some->contains(r)) << r;
}

TEST(RoundScheduleTest, RejectsMalformedSchedules) {
  for (const char* bad : {"", "0", "-3", "x", "3-2", "1,,2", "1.5", "2-x", ","}) {
    auto parsed = RoundSchedule::parse(bad);
    EXPECT_FALSE(parsed.ok()) << "'" << bad << "' was accepted";
  }
}

TEST(ScaleUpdateTest, ScalesTheDifferenceFromTheGlobalModel) {
  StateDict global = {{"w", torch::tensor({1.0f, 2.0f})},
                      {"bn.num_batches_tracked", torch::tensor(int64_t{4})}};
  StateDict local = {{"w", torch::tensor({2.0f, 1.0f})},
                     {"bn.num_batches_tracked", torch::tensor(int64_t{9})}};
  auto scaled = scale_update(local, global, 10.0);
  ASSERT_TRUE(scaled.ok());
  // 1 + 10*(2-1) = 11, 2 + 10*(1-2) = -8; integer buffers stay the local ones.
  EXPECT_TRUE(torch::allclose(scaled->at("w"), torch::tensor({11.0f, -8.0f})));
  EXPECT_EQ(scaled->at("bn.num_batches_tracked").item<int64_t>(), 9);

  // BatchNorm statistics are not parameters: scaled, a running variance
  // would go negative (1 + 10 * (0.5 - 1) = -4).
  global["bn.running_var"] = torch::tensor({1.0f});
  local["bn.running_var"] = torch::tensor({0.5f});
  global["bn.running_mean"] = torch::tensor({0.0f});
  local["bn.running_mean"] = torch::tensor({0.2f});
  auto buffers = scale_update(local, global, 10.0);
  ASSERT_TRUE(buffers.ok());
  EXPECT_TRUE(torch::equal(buffers->at("bn.running_var"), local.at("bn.running_var")));
  EXPECT_TRUE(torch::equal(buffers->at("bn.running_mean"), local.at("bn.running_mean")));
  EXPECT_TRUE(torch::allclose(buffers->at("w"), torch::tensor({11.0f, -8.0f})));

  auto same = scale_update(local, global, 1.0);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(torch::allclose(same->at("w"), local.at("w")));

  local.erase("w");
  EXPECT_FALSE(scale_update(local, global, 2.0).ok());
}

}  // namespace
}  // namespace fedvar::client_sim

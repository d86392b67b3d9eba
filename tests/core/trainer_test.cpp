#include "core/trainer.h"

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "tests/support/poisoned_fixture.h"

namespace fedvar {
namespace {

TEST(Trainer, RejectsEmptyDataAndChannelMismatch) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  Dataset empty;
  EXPECT_FALSE(train_model(model, empty, {}).ok());
  Dataset rgb{torch::zeros({4, 3, 8, 8}, torch::kUInt8), torch::zeros({4}, torch::kLong)};
  TrainOptions opts;
  opts.normalization = {{0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}};
  auto r = train_model(model, rgb, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("channel"), std::string::npos);
}

// The fixture the defense tests build on: a real backdoor on real data.
TEST(Trainer, PoisonedRunOnFashionMnistPlantsABackdoor) {
  auto f = testing::make_poisoned_fixture();
  ASSERT_TRUE(f.model) << "Fashion-MNIST missing or training failed";
  ASSERT_EQ(f.history.size(), 3u);
  EXPECT_LT(f.history.back().loss, f.history.front().loss);
  // 10% of every batch is poisoned: ~400 images per epoch.
  EXPECT_NEAR(static_cast<double>(f.history[0].poisoned), 400.0, 40.0);
  EvalOptions eval{f.normalization};
  const double acc = accuracy_percent(f.model, f.test, eval).value();
  const double asr =
      attack_success_percent(f.model, f.test, f.trigger, f.target, eval).value();
  EXPECT_GT(acc, 70.0);
  EXPECT_GT(asr, 90.0);
  // The trigger is what flips the label: clean non-target images are mostly
  // not sent to the target class (the share ASR is measured against).
  const double clean_to_target =
      clean_to_target_percent(f.model, f.test, f.target, eval).value();
  EXPECT_LT(clean_to_target, 25.0);
  auto labels = f.test.labels;
  auto predicted = predict(f.model, f.test, eval).value();
  auto victims = labels.ne(f.target);
  const double counted =
      100.0 * predicted.eq(f.target).logical_and(victims).sum().item<double>() /
      victims.sum().item<double>();
  EXPECT_NEAR(clean_to_target, counted, 1e-9);
}

}  // namespace
}  // namespace fedvar

#include "core/augment.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace fedvar {
namespace {

// Each augmented image is its original shifted by at most 2 pixels (the
// uncovered border zero) and possibly mirrored; over a batch both the shifts
// and the flips vary, and the same generator seed gives the same batch.
TEST(Augment, ShiftsAndFlipsEachImage) {
  torch::manual_seed(0);
  const auto images = torch::rand({64, 1, 28, 28}) + 0.1;  // no pixel is 0
  auto gen = at::detail::createCPUGenerator(3);
  const auto out = augment_batch(images, gen);
  ASSERT_EQ(out.sizes(), images.sizes());
  const auto padded = torch::constant_pad_nd(images, {2, 2, 2, 2}, 0);
  std::set<std::pair<int, int>> shifts;
  int flipped = 0;
  for (int64_t i = 0; i < images.size(0); ++i) {
    bool found = false;
    for (int dy = 0; dy <= 4 && !found; ++dy) {
      for (int dx = 0; dx <= 4 && !found; ++dx) {
        auto crop = padded[i].slice(1, dy, dy + 28).slice(2, dx, dx + 28);
        for (bool flip : {false, true}) {
          if (torch::equal(out[i], flip ? crop.flip({2}) : crop)) {
            found = true;
            shifts.insert({dy, dx});
            flipped += flip ? 1 : 0;
            break;
          }
        }
      }
    }
    EXPECT_TRUE(found) << "image " << i << " is no shift or flip of its original";
  }
  EXPECT_GT(shifts.size(), 5u);
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 54);
  auto again = at::detail::createCPUGenerator(3);
  EXPECT_TRUE(torch::equal(augment_batch(images, again), out));
}

// Which shift and flip each image gets is drawn from the generator: the
// shifts (rows, then columns) first, then one flip per image.
TEST(Augment, DrawsTheShiftsThenTheFlipsFromTheGenerator) {
  torch::manual_seed(1);
  const auto images = torch::rand({16, 2, 9, 7});
  auto gen = at::detail::createCPUGenerator(5);
  const auto out = augment_batch(images, gen);
  auto draw = at::detail::createCPUGenerator(5);
  const auto shifts = torch::randint(0, 5, {16, 2}, draw, torch::kLong);
  const auto flips = torch::rand({16}, draw) < 0.5;
  const auto padded = torch::constant_pad_nd(images, {2, 2, 2, 2}, 0);
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t dy = shifts[i][0].item<int64_t>(), dx = shifts[i][1].item<int64_t>();
    auto crop = padded[i].slice(1, dy, dy + 9).slice(2, dx, dx + 7);
    if (flips[i].item<bool>()) crop = crop.flip({2});
    EXPECT_TRUE(torch::equal(out[i], crop)) << "image " << i;
  }
}

}  // namespace
}  // namespace fedvar

// Tests of core/trigger: exact pixels of every trigger kind, DBA pieces and
// batch poisoning (the spec grammar and fitting: trigger_spec_test.cpp).
#include "core/trigger.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/support/trigger_util.h"

namespace fedvar {
namespace {

using testing::must_parse;

// `images` with the trigger applied (a copy; rng seeded with `seed`).
torch::Tensor stamped(const std::string& text, const torch::Tensor& images,
                      uint64_t seed = 1) {
  torch::Tensor out = images.clone();
  std::mt19937_64 rng(seed);
  apply_trigger(must_parse(text), out, rng);
  return out;
}

torch::Tensor random_images(int64_t b, int64_t c, int64_t h, int64_t w) {
  torch::manual_seed(/*seed=*/5);
  return torch::rand({b, c, h, w});
}

// `base` with a size x size patch at (row, col) written pixel by pixel.
torch::Tensor expected_patch(const torch::Tensor& base, int64_t row, int64_t col,
                             int64_t size, bool checkerboard) {
  torch::Tensor out = base.clone();
  auto a = out.accessor<float, 4>();
  for (int64_t b = 0; b < out.size(0); ++b)
    for (int64_t c = 0; c < out.size(1); ++c)
      for (int64_t r = 0; r < size; ++r)
        for (int64_t k = 0; k < size; ++k)
          a[b][c][row + r][col + k] = (!checkerboard || (r + k) % 2 == 0) ? 1.f : 0.f;
  return out;
}

// `base` with 1.0 on the rectangles {row, col, rows, cols}.
torch::Tensor expected_bars(const torch::Tensor& base,
                            const std::vector<std::vector<int64_t>>& bars) {
  torch::Tensor out = base.clone();
  for (const auto& bar : bars) {
    out.narrow(2, bar[0], bar[2]).narrow(3, bar[1], bar[3]).fill_(1.0);
  }
  return out;
}

TEST(TriggerPatch, SolidSitsAtBottomRightCornerWithMargin) {
  torch::Tensor base = random_images(2, 3, 10, 12);
  // H=10, W=12, size 3: top-left at (10-1-3, 12-1-3) = (6, 8).
  EXPECT_TRUE(
      torch::equal(stamped("patch:size=3", base), expected_patch(base, 6, 8, 3, false)));
  EXPECT_TRUE(torch::equal(stamped("patch:size=2,row=0", base),
                           expected_patch(base, 0, 12 - 1 - 2, 2, false)));
}

TEST(TriggerPatch, CheckerboardAtExplicitRowCol) {
  torch::Tensor base = random_images(2, 2, 9, 11);
  torch::Tensor out = stamped("patch:size=4,pattern=checkerboard,row=2,col=5", base);
  EXPECT_TRUE(torch::equal(out, expected_patch(base, 2, 5, 4, true)));
  EXPECT_EQ(out[1][1][2][5].item<float>(), 1.f);  // (0, 0) of the patch: even
  EXPECT_EQ(out[1][1][2][6].item<float>(), 0.f);
  EXPECT_EQ(out[0][0][5][8].item<float>(), 1.f);  // (3, 3): even
}

TEST(TriggerPatch, RandomPositionsStayInsideAndCoverAllPlaces) {
  const int64_t h = 8, w = 10, size = 3, n = 1000;
  torch::Tensor zeros = torch::zeros({n, 2, h, w});
  torch::Tensor out = stamped("patch:size=3,position=random", zeros, /*seed=*/42);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor img = out[i][0];
    ASSERT_EQ(img.sum().item<float>(), size * size) << "image " << i;
    torch::Tensor on = img.nonzero();
    const int64_t row = on.select(1, 0).min().item<int64_t>();
    const int64_t col = on.select(1, 1).min().item<int64_t>();
    ASSERT_LE(row + size, h);
    ASSERT_LE(col + size, w);
    torch::Tensor want = expected_patch(zeros.narrow(0, i, 1), row, col, size, false);
    ASSERT_TRUE(torch::equal(out.narrow(0, i, 1), want)) << "image " << i;
    seen.insert({row, col});
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>((h - size + 1) * (w - size + 1)));
}

TEST(TriggerPatch, RandomPatchAsLargeAsTheImageCoversIt) {
  torch::Tensor out = stamped("patch:size=6,position=random", torch::zeros({3, 1, 6, 6}));
  EXPECT_TRUE(torch::equal(out, torch::ones({3, 1, 6, 6})));
}

TEST(TriggerPatch, RandomPositionsAreDeterministicForASeed) {
  torch::Tensor zeros = torch::zeros({16, 1, 12, 12});
  const std::string spec = "patch:size=3,pattern=checkerboard,position=random";
  EXPECT_TRUE(torch::equal(stamped(spec, zeros, 7), stamped(spec, zeros, 7)));
  EXPECT_FALSE(torch::equal(stamped(spec, zeros, 7), stamped(spec, zeros, 8)));
}

// The documented noise: element i of [C, H, W] is (g()>>11)*2^-53.
std::vector<double> reference_noise(uint64_t seed, int64_t n) {
  std::mt19937_64 gen(seed);
  std::vector<double> out(n);
  for (auto& v : out) v = static_cast<double>(gen() >> 11) / 9007199254740992.0;
  return out;
}

TEST(TriggerBlend, FollowsTheFormulaWithTheSeededNoise) {
  torch::Tensor base = random_images(2, 3, 4, 5);
  torch::Tensor out = stamped("blend:ratio=0.25,seed=7", base);
  const std::vector<double> noise = reference_noise(7, 3 * 4 * 5);
  torch::Tensor flat_in = base.reshape({2, -1}), flat_out = out.reshape({2, -1});
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 60; ++i) {
      const double x = flat_in[b][i].item<float>();
      EXPECT_NEAR(flat_out[b][i].item<float>(), 0.75 * x + 0.25 * noise[i], 1e-6)
          << "image " << b << " element " << i;
    }
  }
  // ratio=1 replaces every image by the noise itself.
  torch::Tensor full = stamped("blend:ratio=1,seed=7", base);
  torch::Tensor want = torch::tensor(noise, torch::kDouble).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(full.reshape({2, -1})[0], want));
  EXPECT_TRUE(torch::equal(full.reshape({2, -1})[1], want));
  EXPECT_FALSE(torch::equal(full, stamped("blend:ratio=1,seed=8", base)));
}

TEST(TriggerDba, GlobalTriggerBarsAtDocumentedCoordinates) {
  torch::Tensor base = random_images(2, 3, 8, 12);
  // Default: 4 bars of 1x4, gap 2, origin (1, 1): rows 1 and 4, cols 1 and 7.
  EXPECT_TRUE(torch::equal(
      stamped("dba", base),
      expected_bars(base, {{1, 1, 1, 4}, {1, 7, 1, 4}, {4, 1, 1, 4}, {4, 7, 1, 4}})));
  EXPECT_TRUE(
      torch::equal(stamped("dba:piece=2", base), expected_bars(base, {{4, 1, 1, 4}})));
  // 3 bars of 2x3, gap 1, origin (0, 2): (0,2), (0,6), (3,2).
  EXPECT_TRUE(
      torch::equal(stamped("dba:pieces=3,bar=2x3,gap=1,origin=0x2", base),
                   expected_bars(base, {{0, 2, 2, 3}, {0, 6, 2, 3}, {3, 2, 2, 3}})));
}

TEST(TriggerDba, PiecesAreDisjointAndTheirUnionIsTheGlobalTrigger) {
  for (const std::string text : {"dba", "dba:pieces=3,bar=2x3,gap=0",
                                 "dba:pieces=5,gap=1,origin=0x0", "dba:pieces=1"}) {
    const TriggerSpec global = must_parse(text);
    torch::Tensor zeros = torch::zeros({1, 1, 16, 16});
    std::mt19937_64 rng(1);
    torch::Tensor global_mask = zeros.clone();
    apply_trigger(global, global_mask, rng);
    const std::vector<TriggerSpec> pieces = dba_pieces(global);
    ASSERT_EQ(pieces.size(), static_cast<size_t>(global.pieces)) << text;
    torch::Tensor sum = zeros.clone();
    for (int i = 0; i < global.pieces; ++i) {
      TriggerSpec want = global;
      want.piece = i;
      EXPECT_TRUE(pieces[i] == want) << text << " piece " << i;
      torch::Tensor mask = zeros.clone();
      apply_trigger(pieces[i], mask, rng);
      EXPECT_EQ(mask.sum().item<float>(), global.bar_rows * global.bar_cols);
      sum += mask;
    }
    EXPECT_TRUE(torch::equal(sum, global_mask)) << text;  // overlap would give 2
  }
  EXPECT_TRUE(dba_pieces(must_parse("patch")).empty());
}

TEST(TriggerApply, LeavesImagesUnchangedWhenThePreconditionsFail) {
  torch::Tensor small = torch::zeros({2, 1, 4, 4});
  EXPECT_TRUE(torch::equal(stamped("patch:size=5", small), small));
  torch::Tensor three_d = torch::zeros({1, 8, 8});
  EXPECT_TRUE(torch::equal(stamped("patch", three_d), three_d));
  torch::Tensor labels = torch::ones({2}, torch::kLong);
  std::mt19937_64 rng(1);
  EXPECT_EQ(poison_batch(must_parse("patch:size=5"), small, labels, 0, 1.0, rng), 0);
  torch::Tensor images = torch::zeros({3, 1, 8, 8});
  EXPECT_EQ(poison_batch(must_parse("patch"), images, labels, 0, 1.0, rng), 0);
  EXPECT_TRUE(torch::equal(images, torch::zeros({3, 1, 8, 8})));
  EXPECT_TRUE(torch::equal(labels, torch::ones({2}, torch::kLong)));
}

TEST(TriggerPoison, StampsAndRelabelsExactlyRoundRatioTimesB) {
  const TriggerSpec spec = must_parse("patch:size=2");
  const std::vector<std::tuple<int64_t, double, int64_t>> cases = {
      {10, 0.3, 3}, {128, 0.1, 13}, {7, 0.5, 4},   {4, 0.125, 1},
      {10, 0.0, 0}, {10, 0.04, 0},  {10, 1.0, 10}, {10, 1.5, 10}};
  const torch::Tensor one = expected_patch(torch::zeros({1, 1, 6, 6}), 3, 3, 2, false);
  for (const auto& [batch, ratio, k] : cases) {
    torch::Tensor images = torch::zeros({batch, 1, 6, 6});
    torch::Tensor labels = torch::ones({batch}, torch::kLong);
    std::mt19937_64 rng(3);
    EXPECT_EQ(poison_batch(spec, images, labels, /*target=*/0, ratio, rng), k);
    torch::Tensor marked = images.sum({1, 2, 3}) > 0;
    EXPECT_EQ(marked.sum().item<int64_t>(), k) << batch << " x " << ratio;
    EXPECT_TRUE(torch::equal(marked, labels == 0)) << batch << " x " << ratio;
    for (int64_t i = 0; i < batch; ++i) {
      if (!marked[i].item<bool>()) continue;
      EXPECT_TRUE(torch::equal(images.narrow(0, i, 1), one)) << "image " << i;
    }
  }
}

TEST(TriggerPoison, ChoosesEveryImageAboutEquallyOften) {
  const TriggerSpec spec = must_parse("patch:size=2");
  std::mt19937_64 rng(9);
  std::vector<int> times(10, 0);
  std::set<std::vector<bool>> subsets;
  for (int draw = 0; draw < 300; ++draw) {
    torch::Tensor images = torch::zeros({10, 1, 6, 6});
    torch::Tensor labels = torch::ones({10}, torch::kLong);
    ASSERT_EQ(poison_batch(spec, images, labels, 0, 0.3, rng), 3);
    std::vector<bool> chosen(10);
    for (int i = 0; i < 10; ++i) {
      chosen[i] = labels[i].item<int64_t>() == 0;
      times[i] += chosen[i];
    }
    subsets.insert(chosen);
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_GT(times[i], 50) << "image " << i;  // expected 90 each
    EXPECT_LT(times[i], 130) << "image " << i;
  }
  EXPECT_GT(subsets.size(), 60u);  // 120 subsets of 3 out of 10
}

TEST(TriggerPoison, IsDeterministicForASeed) {
  const TriggerSpec spec = must_parse("patch:size=3,position=random");
  const auto run = [&](uint64_t seed) {
    torch::Tensor images = random_images(32, 3, 12, 12);
    torch::Tensor labels = torch::arange(32, torch::kLong) % 10;
    std::mt19937_64 rng(seed);
    EXPECT_EQ(poison_batch(spec, images, labels, 9, 0.25, rng), 8);
    return std::make_pair(images, labels);
  };
  const auto [images_a, labels_a] = run(11);
  const auto [images_b, labels_b] = run(11);
  const auto [images_c, labels_c] = run(12);
  EXPECT_TRUE(torch::equal(images_a, images_b));
  EXPECT_TRUE(torch::equal(labels_a, labels_b));
  EXPECT_FALSE(torch::equal(images_a, images_c));
}

TEST(TriggerApply, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::Tensor base = random_images(4, 3, 16, 16);
  for (const std::string text :
       {"patch:size=3,pattern=checkerboard", "patch:size=4,position=random",
        "blend:ratio=0.2,seed=3", "dba"}) {
    torch::Tensor on_gpu = stamped(text, base.to(torch::kCUDA), 5).cpu();
    EXPECT_TRUE(torch::allclose(on_gpu, stamped(text, base, 5), 1e-6, 1e-6)) << text;
  }
}

}  // namespace
}  // namespace fedvar

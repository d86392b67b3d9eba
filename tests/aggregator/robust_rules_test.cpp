// The robust rules against Flower's numpy functions on fixed random updates,
// against cases worked by hand, and on bad parameters (kInvalidArgument, never
// a crash).
#include "aggregator/robust_rules.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/accumulate.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/torch_compat.h"
#include "tests/support/test_util.h"

namespace fedvar::aggregator {
namespace {

using nlohmann::json;

const std::string kFlowerScript = FEDVAR_SOURCE_DIR "/tests/python/flower_reference.py";
// Flower's sources: $FEDVAR_VENDOR (deploy/test.sh sets it), else the
// checkout's sibling shared/vendor.
std::string vendor_dir() {
  const char* env = std::getenv("FEDVAR_VENDOR");
  return env && *env ? env : FEDVAR_SOURCE_DIR "/../shared/vendor";
}

// Flower's per-layer code runs on three layers; fedvar sees them concatenated.
const std::vector<std::vector<int64_t>> kLayerShapes = {{4, 10}, {30}, {2, 3, 5}};
constexpr int64_t kDim = 40 + 30 + 30;

torch::Tensor random_rows(int64_t n, int64_t d, torch::ScalarType dtype, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn({n, d}, gen, torch::dtype(dtype));
}

json to_json(const torch::Tensor& t) {
  if (t.dim() == 0) return t.item<double>();
  json list = json::array();
  for (int64_t i = 0; i < t.size(0); ++i) list.push_back(to_json(t[i]));
  return list;
}

// Each element within 1e-6 relative to max(|reference|, 1) (values are O(1)).
void expect_close(const torch::Tensor& ours, const json& reference, const char* what) {
  const torch::Tensor a = ours.to(torch::kFloat64).flatten().contiguous();
  ASSERT_EQ(a.numel(), static_cast<int64_t>(reference.size())) << what;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double b = reference[static_cast<size_t>(i)].get<double>();
    ASSERT_NEAR(a[i].item<double>(), b, 1e-6 * std::max(std::abs(b), 1.0))
        << what << " at " << i;
  }
}

std::string contents(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_invalid(const Status& status) {
  EXPECT_EQ(status.code(), Code::kInvalidArgument) << status.message();
}

struct FlowerCase {
  int64_t n;
  torch::ScalarType dtype;
  double beta;
  int64_t f;
  int64_t to_keep;
};

class FlowerReferenceTest : public ::testing::TestWithParam<FlowerCase> {};

TEST_P(FlowerReferenceTest, RulesMatchFlowersNumpyFunctions) {
  const FlowerCase c = GetParam();
  const torch::Tensor updates = random_rows(c.n, kDim, c.dtype, 20240601 + c.n);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  const torch::Tensor counts = torch::randint(1, 500, {c.n}, gen, torch::kInt64);
  json clients = json::array();
  for (int64_t i = 0; i < c.n; ++i) {
    json layers = json::array();
    int64_t start = 0;
    for (const auto& shape : kLayerShapes) {
      const int64_t size = c10::multiply_integers(shape);
      layers.push_back(to_json(updates[i].narrow(0, start, size).reshape(shape)));
      start += size;
    }
    clients.push_back(layers);
  }
  const json input = {{"dtype", c.dtype == torch::kFloat32 ? "float32" : "float64"},
                      {"clients", clients},
                      {"num_examples", to_json(counts)},
                      {"beta", c.beta},
                      {"num_malicious", c.f},
                      {"to_keep", c.to_keep}};
  ASSERT_TRUE(std::ifstream(kFlowerScript).good()) << kFlowerScript << " is missing";
  testing::TempDir dir;
  const std::string in_file = dir.file("in.json"), err_file = dir.file("err");
  std::ofstream(in_file) << input.dump();
  const std::string vendor = vendor_dir();
  const auto r = testing::run_command("PYTHONPATH=" + vendor + " /usr/bin/python3 " +
                                      kFlowerScript + " " + in_file + " 2>" + err_file);
  if (r.exit_code == 77) {
    GTEST_SKIP() << "Flower's sources were not found (" << vendor
                 << "): " << contents(err_file);
  }
  ASSERT_EQ(r.exit_code, 0) << contents(err_file);
  const json ref = json::parse(r.output);

  auto median = coordinate_median(updates);
  ASSERT_TRUE(median.ok()) << median.status().message();
  EXPECT_EQ(median->scalar_type(), c.dtype);
  expect_close(*median, ref["median"], "median");

  auto trimmed = trimmed_mean(updates, c.beta);
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().message();
  EXPECT_EQ(trimmed->scalar_type(), c.dtype);
  expect_close(*trimmed, ref["trimmed_mean"], "trimmed_mean");

  auto distances = pairwise_sq_distances(updates);
  ASSERT_TRUE(distances.ok()) << distances.status().message();
  EXPECT_EQ(distances->scalar_type(), torch::kFloat64);
  expect_close(*distances, ref["distances"], "distances");

  auto krum = krum_select(updates, c.f, 1);
  ASSERT_TRUE(krum.ok()) << krum.status().message();
  ASSERT_EQ(krum->size(), 1u);
  expect_close(updates[krum->front()], ref["krum"], "krum");

  // Multi-Krum as Flower does it: the sample-weighted mean of the m best rows.
  auto best = krum_select(updates, c.f, c.to_keep);
  ASSERT_TRUE(best.ok()) << best.status().message();
  ASSERT_EQ(best->size(), static_cast<size_t>(c.to_keep));
  EXPECT_EQ(best->front(), krum->front());
  const torch::Tensor idx = torch::tensor(*best, torch::kInt64);
  auto multi = weighted_mean(updates.index_select(0, idx), counts.index_select(0, idx));
  ASSERT_TRUE(multi.ok()) << multi.status().message();
  expect_close(*multi, ref["multi_krum"], "multi_krum");

  auto mean = weighted_mean(updates, counts);
  ASSERT_TRUE(mean.ok()) << mean.status().message();
  EXPECT_EQ(mean->scalar_type(), c.dtype);
  expect_close(*mean, ref["weighted_mean"], "weighted_mean");
}

// Odd and even n, both dtypes, a beta whose n * beta is not an integer.
INSTANTIATE_TEST_SUITE_P(Cases, FlowerReferenceTest,
                         ::testing::Values(FlowerCase{7, torch::kFloat64, 0.2, 1, 3},
                                           FlowerCase{8, torch::kFloat32, 0.25, 2, 4},
                                           FlowerCase{11, torch::kFloat64, 0.1, 2, 5},
                                           FlowerCase{10, torch::kFloat32, 0.3, 3, 1}),
                         [](const ::testing::TestParamInfo<FlowerCase>& info) {
                           return "n" + std::to_string(info.param.n) + "_f" +
                                  std::to_string(info.param.f);
                         });

TEST(RobustRulesTest, ColumnChunksJoinUpToTheWholeTensorResult) {
  // 16 x 1049576 float32: the rules work on column chunks of 2^24 elements
  // (1048576 columns here), so this crosses a chunk boundary. Rows 14 and 15
  // are far apart outliers, which Bulyan with f = 1 leaves out.
  const int64_t n = 16, d = 1049576;
  torch::Tensor x = random_rows(n, d, torch::kFloat32, 17);
  x[14] += 1000;
  x[15] -= 1000;
  const torch::Tensor sorted = std::get<0>(x.sort(/*dim=*/0));
  auto median = coordinate_median(x);
  ASSERT_TRUE(median.ok()) << median.status().message();
  EXPECT_TRUE(torch::equal(*median, (sorted[7] + sorted[8]) / 2));
  auto trimmed = trimmed_mean(x, 0.1);  // cuts 1 from each end
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().message();
  EXPECT_TRUE(torch::allclose(*trimmed, sorted.narrow(0, 1, 14).mean(0), 1e-6, 1e-6));
  const torch::Tensor w = torch::arange(1, n + 1, torch::kFloat64);
  auto mean = weighted_mean(x, w);
  ASSERT_TRUE(mean.ok()) << mean.status().message();
  EXPECT_TRUE(torch::allclose(
      *mean, (w / w.sum()).matmul(x.to(torch::kFloat64)).to(x.dtype()), 1e-6, 1e-6));
  auto dist = pairwise_sq_distances(x);
  ASSERT_TRUE(dist.ok()) << dist.status().message();
  const torch::Tensor from_first =
      (x.to(torch::kFloat64) - x[0].to(torch::kFloat64)).square().sum(/*dim=*/1);
  EXPECT_TRUE(torch::allclose((*dist)[0], from_first, 1e-9, 0));
  // Bulyan: theta = 14 honest rows, beta = 12 values nearest each median.
  auto result = bulyan(x, /*f=*/1);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const torch::Tensor honest = std::get<0>(x.narrow(0, 0, 14).sort(/*dim=*/0));
  const torch::Tensor gap = (honest - (honest[6] + honest[7]) / 2).abs();
  const torch::Tensor nearest =
      std::get<1>(gap.sort(TorchOptional<bool>(true), /*dim=*/0)).narrow(0, 0, 12);
  EXPECT_TRUE(
      torch::allclose(*result, honest.gather(0, nearest).mean(/*dim=*/0), 1e-6, 1e-6));
}

TEST(RobustRulesTest, MedianOfAnEvenCountIsTheMeanOfTheMiddleTwo) {
  const torch::Tensor x =
      torch::tensor({{1.0, -4.0}, {5.0, 0.0}, {2.0, 8.0}, {10.0, 2.0}}, torch::kFloat64);
  auto median = coordinate_median(x);
  ASSERT_TRUE(median.ok());
  // torch::median would give the lower middle value, 2 and 0.
  EXPECT_TRUE(torch::equal(*median, torch::tensor({3.5, 1.0}, torch::kFloat64)));
}

TEST(RobustRulesTest, TrimmedMeanCutsFloorOfBetaTimesN) {
  const torch::Tensor x =
      torch::tensor({{3.0}, {100.0}, {1.0}, {4.0}, {2.0}}, torch::kFloat64);
  auto cut_one = trimmed_mean(x, 0.2);  // 0.2 * 5 = 1: mean of 2, 3, 4
  ASSERT_TRUE(cut_one.ok());
  EXPECT_DOUBLE_EQ(cut_one->item<double>(), 3.0);
  auto cut_none = trimmed_mean(x, 0.19);  // floor(0.95) = 0: the plain mean
  ASSERT_TRUE(cut_none.ok());
  EXPECT_DOUBLE_EQ(cut_none->item<double>(), 22.0);
}

TEST(RobustRulesTest, DistancesStayAccurateForFullModelsFarFromTheOrigin) {
  // Rows sharing a large offset (full models, not deltas) and one far outlier:
  // the distances must still match the direct differences. (From a Gram matrix
  // not centred they are 9% off here, centred on the mean 40 times off.)
  torch::Tensor x = 1e4 + 1e-3 * random_rows(6, 500, torch::kFloat64, 7);
  x[5] += 1e6;
  auto d = pairwise_sq_distances(x);
  ASSERT_TRUE(d.ok());
  const torch::Tensor direct = (x.unsqueeze(1) - x.unsqueeze(0)).square().sum(2);
  EXPECT_TRUE(torch::allclose(*d, direct, /*rtol=*/1e-6, /*atol=*/0));
  EXPECT_TRUE(torch::equal(*d, d->t()));
}

TEST(RobustRulesTest, KrumPicksAnHonestRowDespiteAHugeOutlier) {
  // Row 0 is 1e20 per coordinate in float32: its squared distances overflow
  // float32 (inf, and NaN through a float32 Gram matrix), so this fails unless
  // the distances are computed in float64.
  torch::Tensor x = 0.1 * random_rows(7, kDim, torch::kFloat32, 11);
  x[0].fill_(1e20f);
  auto picked = krum_select(x, /*f=*/1, /*m=*/6);
  ASSERT_TRUE(picked.ok()) << picked.status().message();
  for (int64_t i : *picked) EXPECT_NE(i, 0);
  auto all = krum_select(x, /*f=*/1, /*m=*/7);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->back(), 0);  // the outlier scores worst
}

TEST(RobustRulesTest, BulyanWorkedByHand) {
  // n = 7, f = 1: theta = 5 rows selected, beta = 3 values kept per coordinate.
  // Repeated Krum picks rows 3, 2, 1, 0, 4 (squared distances among 0..4 are
  // 5..51, to the outliers >= 8651). The last two picks run with max(1, r-3) =
  // 1 neighbour, where the two closest rows tie and the lower index wins.
  const torch::Tensor x = torch::tensor({0.0, 0.0, 1.0, 4.0, 2.0, -1.0, 3.0, 2.0, 7.0,
                                         1.5, 100.0, 0.0, -100.0, 50.0},
                                        torch::kFloat64)
                              .reshape({7, 2});
  auto result = bulyan(x, /*f=*/1);
  ASSERT_TRUE(result.ok()) << result.status().message();
  // Coordinate 0: {0, 1, 2, 3, 7}, median 2, nearest three {2, 1, 3}: 2.
  // Coordinate 1: {0, 4, -1, 2, 1.5}, median 1.5, nearest three {1.5, 2, 0}:
  // 3.5 / 3 (the mean of the selection would be 1.3, the median 1.5).
  EXPECT_DOUBLE_EQ((*result)[0].item<double>(), 2.0);
  EXPECT_DOUBLE_EQ((*result)[1].item<double>(), 3.5 / 3);
  // With f = 0 every row is selected and every value kept: the mean.
  const torch::Tensor y = random_rows(5, 20, torch::kFloat64, 3);
  auto mean = bulyan(y, /*f=*/0);
  ASSERT_TRUE(mean.ok()) << mean.status().message();
  EXPECT_TRUE(torch::allclose(*mean, y.mean(0), 1e-12, 1e-12));
}

TEST(RobustRulesTest, ClipToNormScalesOnlyRowsAboveTheBound) {
  const torch::Tensor x =
      torch::tensor({{3.0f, 4.0f}, {0.6f, 0.8f}, {0.0f, 0.0f}}, torch::kFloat32);
  auto clipped = clip_to_norm(x, 2.0);
  ASSERT_TRUE(clipped.ok()) << clipped.status().message();
  EXPECT_EQ(clipped->clipped.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(
      torch::allclose(clipped->clipped[0], torch::tensor({1.2f, 1.6f}, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(clipped->clipped[1], x[1]));  // norm 1 <= 2: unchanged
  EXPECT_TRUE(torch::equal(clipped->clipped[2], x[2]));
  EXPECT_TRUE(
      torch::allclose(clipped->scale, torch::tensor({0.4, 1.0, 1.0}, torch::kFloat64)));
}

TEST(RobustRulesTest, FlTrustAlignedOrthogonalOpposite) {
  const torch::Tensor server = torch::tensor({3.0, 4.0}, torch::kFloat64);  // norm 5
  const torch::Tensor deltas =
      torch::tensor({{1.2, 1.6}, {-4.0, 3.0}, {-6.0, -8.0}}, torch::kFloat64);
  auto r = fltrust(deltas, server);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(torch::allclose(r->trust, torch::tensor({1.0, 0.0, 0.0}, torch::kFloat64)));
  // The aligned delta (norm 2) rescaled to norm 5 is the server delta itself.
  EXPECT_TRUE(torch::allclose(r->aggregate, server));
  // No trust at all (only the opposite delta, or a zero server delta): zeros.
  auto none = fltrust(deltas.narrow(0, 2, 1), server);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(torch::equal(none->aggregate, torch::zeros({2}, torch::kFloat64)));
  auto zero_server = fltrust(deltas, torch::zeros({2}));
  ASSERT_TRUE(zero_server.ok());
  EXPECT_TRUE(torch::equal(zero_server->trust, torch::zeros({3}, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(zero_server->aggregate, torch::zeros({2}, torch::kFloat64)));
}

TEST(RobustRulesTest, FlTrustRescalesAndWeighsByTrust) {
  // cos = 1/sqrt(2) for both; each rescaled to |server| = sqrt(2).
  const torch::Tensor server = torch::tensor({1.0, 1.0}, torch::kFloat64);
  const torch::Tensor deltas =
      torch::tensor({{10.0, 0.0}, {0.0, 10.0}, {0.0, 0.0}}, torch::kFloat64);
  auto r = fltrust(deltas, server);
  ASSERT_TRUE(r.ok());
  const double c = 1 / std::sqrt(2.0);
  EXPECT_TRUE(torch::allclose(r->trust, torch::tensor({c, c, 0.0}, torch::kFloat64)));
  EXPECT_TRUE(torch::allclose(r->aggregate, torch::tensor({c, c}, torch::kFloat64)));
  auto scores = fltrust_scores(deltas, server);
  ASSERT_TRUE(scores.ok());
  const double s = std::sqrt(2.0) / 10;  // |server| / |delta|; 0 without trust
  EXPECT_TRUE(
      torch::allclose(scores->scale, torch::tensor({s, s, 0.0}, torch::kFloat64)));
}

TEST(RobustRulesTest, CosineDistancesWithAZeroRow) {
  const torch::Tensor x = torch::tensor(
      {{1.0, 0.0}, {0.0, 2.0}, {-3.0, 0.0}, {0.0, 0.0}, {1.0, 1.0}}, torch::kFloat64);
  auto d = cosine_distances(x);
  ASSERT_TRUE(d.ok());
  const double h = 1 - 1 / std::sqrt(2.0);
  const torch::Tensor expected = torch::tensor({{0.0, 1.0, 2.0, 1.0, h},
                                                {1.0, 0.0, 1.0, 1.0, h},
                                                {2.0, 1.0, 0.0, 1.0, 2 - h},
                                                {1.0, 1.0, 1.0, 0.0, 1.0},
                                                {h, h, 2 - h, 1.0, 0.0}},
                                               torch::kFloat64);
  EXPECT_TRUE(torch::allclose(*d, expected, 1e-12, 1e-12)) << *d;
}

TEST(RobustRulesTest, GaussianNoiseIsDeterministicPerSeed) {
  const torch::Tensor v = torch::ones({200000}, torch::kFloat32);
  auto a = gaussian_noise_like(v, 0.5, 42);
  auto b = gaussian_noise_like(v, 0.5, 42);
  auto c = gaussian_noise_like(v, 0.5, 43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(*a, *b));
  EXPECT_FALSE(torch::equal(*a, *c));
  EXPECT_NEAR((*a - v).std().item<double>(), 0.5, 0.01);
  EXPECT_NEAR((*a - v).mean().item<double>(), 0.0, 0.01);
  auto none = gaussian_noise_like(v, 0.0, 1);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(torch::equal(*none, v));
}

TEST(RobustRulesTest, BadParametersAreInvalidArgumentNotACrash) {
  const torch::Tensor x = random_rows(6, 10, torch::kFloat32, 5);
  const torch::Tensor empty = torch::empty({0, 10});
  expect_invalid(krum_select(x, /*f=*/2, 1).status());  // n = 6 <= 2f + 2
  expect_invalid(krum_select(x.narrow(0, 0, 4), /*f=*/1, 1).status());
  EXPECT_TRUE(krum_select(x.narrow(0, 0, 5), /*f=*/1, 1).ok());
  expect_invalid(krum_select(x, /*f=*/-1, 1).status());
  expect_invalid(krum_select(x, /*f=*/1, 0).status());
  expect_invalid(krum_select(x, /*f=*/1, 7).status());
  expect_invalid(bulyan(x, /*f=*/1).status());  // n = 6 < 4f + 3
  expect_invalid(bulyan(x, /*f=*/-1).status());
  expect_invalid(trimmed_mean(x, 0.5).status());
  expect_invalid(trimmed_mean(x, -0.1).status());
  expect_invalid(trimmed_mean(x, std::nan("")).status());
  expect_invalid(clip_to_norm(x, 0.0).status());
  expect_invalid(clip_to_norm(x, -1.0).status());
  expect_invalid(clip_to_norm(x, std::nan("")).status());
  expect_invalid(fltrust(x, torch::ones({9})).status());
  expect_invalid(weighted_mean(x, -torch::ones({6})).status());
  expect_invalid(weighted_mean(x, torch::zeros({6})).status());
  expect_invalid(weighted_mean(x, torch::ones({5})).status());
  expect_invalid(gaussian_noise_like(x, -1.0, 0).status());
  expect_invalid(gaussian_noise_like(x, std::nan(""), 0).status());
  for (const torch::Tensor& bad :
       {empty, torch::Tensor(), torch::ones({10}), torch::ones({3, 4}, torch::kInt64)}) {
    expect_invalid(coordinate_median(bad).status());
    expect_invalid(trimmed_mean(bad, 0.1).status());
    expect_invalid(pairwise_sq_distances(bad).status());
    expect_invalid(krum_select(bad, 0, 1).status());
    expect_invalid(bulyan(bad, 0).status());
    expect_invalid(clip_to_norm(bad, 1.0).status());
    expect_invalid(fltrust(bad, torch::ones({10})).status());
    expect_invalid(cosine_distances(bad).status());
    expect_invalid(weighted_mean(bad, torch::ones({3})).status());
  }
  expect_invalid(gaussian_noise_like(torch::Tensor(), 1.0, 0).status());
}

}  // namespace
}  // namespace fedvar::aggregator

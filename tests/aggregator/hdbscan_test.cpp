// HDBSCAN finds clusters known by construction: Gaussian blobs, FLAME's benign
// majority among spread-out or identical (Sybil) updates, and tiny cases whose
// condensed trees and stabilities are worked out by hand below.
#include "aggregator/hdbscan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

namespace fedvar::aggregator {
namespace {

using Points = std::vector<std::vector<double>>;

std::vector<double> euclidean_distances(const Points& x) {
  const std::size_t n = x.size();
  std::vector<double> d(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      double sum = 0.0;
      for (std::size_t k = 0; k < x[i].size(); ++k) {
        sum += (x[i][k] - x[j][k]) * (x[i][k] - x[j][k]);
      }
      d[i * n + j] = d[j * n + i] = std::sqrt(sum);
    }
  }
  return d;
}

// 1 - cos(a, b), as FLAME compares client updates.
std::vector<double> cosine_distances(const Points& x) {
  const std::size_t n = x.size();
  auto dot = [&x](std::size_t i, std::size_t j) {
    double sum = 0.0;
    for (std::size_t k = 0; k < x[i].size(); ++k) sum += x[i][k] * x[j][k];
    return sum;
  };
  std::vector<double> d(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double cos = dot(i, j) / std::sqrt(dot(i, i) * dot(j, j));
      d[i * n + j] = d[j * n + i] = std::max(0.0, 1.0 - cos);
    }
  }
  return d;
}

std::vector<int> cluster(const Points& points, const HdbscanOptions& options,
                         bool cosine = false) {
  const int n = static_cast<int>(points.size());
  auto labels = hdbscan(cosine ? cosine_distances(points) : euclidean_distances(points),
                        n, options);
  EXPECT_TRUE(labels.ok()) << labels.status().message();
  return labels.ok() ? labels.value() : std::vector<int>();
}

HdbscanOptions options(int min_cluster_size, int min_samples, bool allow_single_cluster) {
  HdbscanOptions o;
  o.min_cluster_size = min_cluster_size;
  o.min_samples = min_samples;
  o.allow_single_cluster = allow_single_cluster;
  return o;
}

// FLAME's setting in R^11: updates 0..6 are 3*e0 + e_(i+1), so any two benign ones
// have cosine 9/10 (distance 0.1, the same for every pair, bit for bit); 7..9 point
// elsewhere: distance 1 to each other and >= 1 to every benign update.
Points flame_updates() {
  Points u(10, std::vector<double>(11, 0.0));
  for (int i = 0; i < 7; ++i) {
    u[i][0] = 3.0;
    u[i][1 + i] = 1.0;
  }
  u[7][8] = 1.0;
  u[8][9] = 1.0;
  u[9][10] = 1.0;
  u[9][0] = -1.0;  // leans away from the benign direction: distance ~1.67
  return u;
}

TEST(HdbscanTest, TwoGaussianBlobsAreTwoClustersAndFarOutliersAreNoise) {
  constexpr int kPerBlob = 40;
  std::mt19937_64 rng(/*seed=*/20220810);
  std::normal_distribution<double> noise(0.0, 0.5);
  Points points;
  for (const double center_x : {0.0, 10.0}) {
    for (int i = 0; i < kPerBlob; ++i) {
      const double x = center_x + noise(rng);
      const double y = noise(rng);
      points.push_back({x, y});
    }
  }
  points.push_back({5.0, 40.0});
  points.push_back({-40.0, -30.0});
  points.push_back({45.0, -35.0});
  for (const bool allow_single : {false, true}) {
    SCOPED_TRACE(allow_single);
    const std::vector<int> labels = cluster(points, options(5, 0, allow_single));
    ASSERT_EQ(labels.size(), points.size());
    // Labels are 0..k-1, k = 2, one per blob.
    EXPECT_EQ(std::set<int>(labels.begin(), labels.end()), (std::set<int>{-1, 0, 1}));
    EXPECT_NE(labels[0], labels[kPerBlob]);
    for (int i = 0; i < kPerBlob; ++i) {
      EXPECT_EQ(labels[i], labels[0]) << "blob A point " << i;
      EXPECT_EQ(labels[kPerBlob + i], labels[kPerBlob]) << "blob B point " << i;
    }
    for (std::size_t i = 2 * kPerBlob; i < points.size(); ++i) {
      EXPECT_EQ(labels[i], -1) << "outlier " << i;
    }
  }
}

TEST(HdbscanTest, FlameMajorityIsTheOneClusterAndSpreadUpdatesAreNoise) {
  const std::vector<int> labels =
      cluster(flame_updates(), options(/*min_cluster_size=*/6, 0, true), true);
  EXPECT_EQ(labels, (std::vector<int>{0, 0, 0, 0, 0, 0, 0, -1, -1, -1}));
}

TEST(HdbscanTest, FlameMajorityWithoutSingleClusterIsNotOneCluster) {
  // The 7 cannot split into two sides of >= 6, so the root is the only candidate;
  // without allow_single_cluster nothing is selected.
  const std::vector<int> labels = cluster(flame_updates(), options(6, 0, false), true);
  ASSERT_EQ(labels.size(), 10u);
  EXPECT_FALSE(labels[0] >= 0 &&
               std::count(labels.begin(), labels.end(), labels[0]) == 10);
  EXPECT_EQ(labels, std::vector<int>(10, -1));
}

TEST(HdbscanTest, SelectedRootKeepsOnlyPointsThatOutlastItsCollapse) {
  // The library's rule for a selected root: update 6 is a little looser (distance
  // 0.1295 to the others, its core distance too), so it leaves the root alone at
  // lambda 1/0.1295 while the other 6 collapse together at lambda 10: it is -1.
  Points u = flame_updates();
  u[6][7] = 1.3;
  const std::vector<int> labels = cluster(u, options(6, 0, true), true);
  EXPECT_EQ(labels, (std::vector<int>{0, 0, 0, 0, 0, 0, -1, -1, -1, -1}));
}

TEST(HdbscanTest, IdenticalSybilUpdatesDoNotJoinTheMajority) {
  // 7 benign updates and 4 identical malicious ones (distance 0 among them),
  // min_cluster_size = n/2 + 1 = 6 as in FLAME; with min_samples 1 (core 0) the
  // Sybils merge at distance 0, with the default their core distance is 1.
  Points u = flame_updates();
  u.resize(7);
  for (int i = 0; i < 4; ++i) u.push_back({0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0});
  for (const int min_samples : {0, 1}) {
    SCOPED_TRACE(min_samples);
    const std::vector<int> labels = cluster(u, options(6, min_samples, true), true);
    EXPECT_EQ(labels, (std::vector<int>{0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1}));
  }
}

// Hand-computed: points 0, 1, 3, 4, 20 on a line, min_cluster_size 2, min_samples
// 1 (core 0, so mutual reachability = distance). MST weights 1, 1, 2, 16. Condensed
// tree: 20 leaves the root at lambda 1/16; at 1/2 the root splits into A = {0, 1}
// and B = {3, 4}, whose points leave at lambda 1. Stabilities: A = B = 2 * (1 - 0.5)
// = 1; root = 1/16 + 4 * 0.5 = 2.0625 > A + B = 2. Without allow_single_cluster:
// A, B and noise; with it the root wins and keeps the points with lambda >= 1/2.
TEST(HdbscanTest, HandComputedRootWinsOnlyWhenAllowed) {
  const Points points = {{0}, {1}, {3}, {4}, {20}};
  EXPECT_EQ(cluster(points, options(2, 1, false)), (std::vector<int>{0, 0, 1, 1, -1}));
  EXPECT_EQ(cluster(points, options(2, 1, true)), (std::vector<int>{0, 0, 0, 0, -1}));
}

// Hand-computed tie: points 0, 1, 3, 4. The root splits at lambda 1/2, its points
// leave at 1: root = 4 * 0.5 = 2 = A + B = 2 * (2 * 0.5). A tie keeps the parent,
// as in the library, so with allow_single_cluster the root is the one cluster.
TEST(HdbscanTest, HandComputedStabilityTieKeepsTheParent) {
  const Points points = {{0}, {1}, {3}, {4}};
  EXPECT_EQ(cluster(points, options(2, 1, true)), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(cluster(points, options(2, 1, false)), (std::vector<int>{0, 0, 1, 1}));
}

// Hand-computed: points 0, 1, 3.5, 4.5, 20. The root splits at distance 2.5
// (lambda 0.4), 20 leaves at 1/15.5. A = B = 2 * (1 - 0.4) = 1.2, root = 1/15.5 +
// 4 * 0.4 = 1.665 < 2.4: the children win even with allow_single_cluster.
TEST(HdbscanTest, HandComputedChildrenWinWhenMoreStable) {
  const Points points = {{0}, {1}, {3.5}, {4.5}, {20}};
  EXPECT_EQ(cluster(points, options(2, 1, true)), (std::vector<int>{0, 0, 1, 1, -1}));
}

// Hand-computed: points 0, 0.1, 5, 5.1. With min_samples 2 the core distance is the
// 2nd smallest entry counting the point itself, i.e. the nearest neighbour (0.1):
// two pairs. With 3 it is ~5 for every point, the pairs vanish, and all is noise
// (the library's precomputed path, which takes the (k+1)-th, would give that at 2).
TEST(HdbscanTest, CoreDistanceCountsThePointItself) {
  const Points points = {{0}, {0.1}, {5}, {5.1}};
  EXPECT_EQ(cluster(points, options(2, 2, false)), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(cluster(points, options(2, 3, false)), (std::vector<int>{-1, -1, -1, -1}));
}

TEST(HdbscanTest, RejectsInvalidInputs) {
  const std::vector<double> good = {0, 1, 2, 1, 0, 3, 2, 3, 0};
  const HdbscanOptions o = options(2, 0, true);
  ASSERT_TRUE(hdbscan(good, 3, o).ok());
  auto code = [](const std::vector<double>& d, int n, const HdbscanOptions& opt) {
    return hdbscan(d, n, opt).status().code();
  };
  std::vector<double> asymmetric = good;
  asymmetric[1] = 1.5;
  EXPECT_EQ(code(asymmetric, 3, o), Code::kInvalidArgument);
  EXPECT_EQ(code(good, 2, o), Code::kInvalidArgument);
  EXPECT_EQ(code(good, 4, o), Code::kInvalidArgument);
  EXPECT_EQ(code(good, -3, o), Code::kInvalidArgument);
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity(), -0.5}) {
    std::vector<double> d = good;
    d[5] = d[7] = bad;
    EXPECT_EQ(code(d, 3, o), Code::kInvalidArgument) << bad;
  }
  std::vector<double> similarity = good;  // a similarity matrix passed by mistake
  similarity[0] = similarity[4] = similarity[8] = 1.0;
  EXPECT_EQ(code(similarity, 3, o), Code::kInvalidArgument);
  EXPECT_EQ(code(good, 3, options(1, 0, true)), Code::kInvalidArgument);
  EXPECT_EQ(code(good, 3, options(2, -1, true)), Code::kInvalidArgument);
  // Rounding (float32 cosine) is forgiven: tiny asymmetry, a tiny negative entry.
  std::vector<double> rounded = good;
  rounded[1] += 1e-9;
  rounded[5] = rounded[7] = -1e-9;
  EXPECT_TRUE(hdbscan(rounded, 3, o).ok());
}

TEST(HdbscanTest, DegenerateInputsReturnWithoutCrashing) {
  const HdbscanOptions single = options(2, 0, true);
  const HdbscanOptions multi = options(2, 0, false);
  auto labels = hdbscan({}, 0, single);
  ASSERT_TRUE(labels.ok());
  EXPECT_TRUE(labels->empty());
  labels = hdbscan({0.0}, 1, single);
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels.value(), std::vector<int>{-1});  // below min_cluster_size
  const std::vector<double> pair = {0, 0.3, 0.3, 0};
  labels = hdbscan(pair, 2, single);
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels.value(), (std::vector<int>{0, 0}));
  labels = hdbscan(pair, 2, multi);
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels.value(), (std::vector<int>{-1, -1}));
  // All identical: one cluster with allow_single_cluster, all noise without it.
  const Points same(8, std::vector<double>{1.0, 2.0});
  for (const int min_samples : {0, 1, 8}) {
    SCOPED_TRACE(min_samples);
    EXPECT_EQ(cluster(same, options(3, min_samples, true)), std::vector<int>(8, 0));
    EXPECT_EQ(cluster(same, options(3, min_samples, false)), std::vector<int>(8, -1));
  }
}

}  // namespace
}  // namespace fedvar::aggregator

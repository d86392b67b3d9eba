#include "core/partition.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fedvar {
namespace {

constexpr int64_t kClasses = 10;

// Balanced labels 0..9 repeated, shuffled so classes are not contiguous.
torch::Tensor balanced_labels(int64_t n) {
  torch::manual_seed(3);
  return torch::arange(n, torch::kLong)
      .remainder(kClasses)
      .index_select(
          /*dim=*/0, torch::randperm(n, torch::kLong));
}

// Every index in 0..n-1 exactly once; each client's list sorted.
void expect_exact_cover(const Partition& parts, int64_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& p : parts) {
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (int64_t i : p) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

// Label histograms of each client's share, as fractions.
std::vector<std::vector<double>> client_class_shares(const Partition& parts,
                                                     const torch::Tensor& labels) {
  const int64_t* y = labels.data_ptr<int64_t>();
  std::vector<std::vector<double>> shares;
  for (const auto& p : parts) {
    std::vector<double> h(kClasses, 0.0);
    for (int64_t i : p) h[y[i]] += 1.0 / static_cast<double>(p.size());
    shares.push_back(h);
  }
  return shares;
}

// Mean over clients of the largest class share (0.1 = uniform, 1 = one class).
double mean_max_share(const Partition& parts, const torch::Tensor& labels) {
  double total = 0;
  for (const auto& h : client_class_shares(parts, labels)) {
    total += *std::max_element(h.begin(), h.end());
  }
  return total / static_cast<double>(parts.size());
}

// Mean over clients of the total-variation distance to the (uniform) global
// label distribution.
double mean_tv_distance(const Partition& parts, const torch::Tensor& labels) {
  double total = 0;
  for (const auto& h : client_class_shares(parts, labels)) {
    double tv = 0;
    for (double s : h) tv += std::abs(s - 1.0 / kClasses) / 2;
    total += tv;
  }
  return total / static_cast<double>(parts.size());
}

TEST(PartitionIid, CoversWithNearEqualSizes) {
  Result<Partition> parts = partition_iid(1003, 10, /*seed=*/1);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->size(), 10u);
  expect_exact_cover(*parts, 1003);
  for (const auto& p : *parts) {
    EXPECT_GE(p.size(), 100u);
    EXPECT_LE(p.size(), 101u);
  }
  const torch::Tensor labels = balanced_labels(1003);
  EXPECT_LT(mean_tv_distance(*parts, labels), 0.15);
}

TEST(PartitionIid, DeterministicBySeed) {
  Result<Partition> a = partition_iid(500, 7, /*seed=*/42);
  Result<Partition> b = partition_iid(500, 7, /*seed=*/42);
  Result<Partition> c = partition_iid(500, 7, /*seed=*/43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
}

TEST(PartitionIid, EdgeCasesAndErrors) {
  Result<Partition> one = partition_iid(5, 1, /*seed=*/0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)[0], (std::vector<int64_t>{0, 1, 2, 3, 4}));
  Result<Partition> each = partition_iid(4, 4, /*seed=*/0);
  ASSERT_TRUE(each.ok());
  expect_exact_cover(*each, 4);
  EXPECT_EQ(partition_iid(10, 0, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(partition_iid(10, -3, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(partition_iid(3, 4, 0).status().code(), Code::kInvalidArgument);
}

TEST(PartitionDirichlet, CoversAndKeepsMinimum) {
  const torch::Tensor labels = balanced_labels(5000);
  for (double beta : {100.0, 0.5, 0.1, 0.01}) {
    Result<Partition> parts = partition_dirichlet(labels, 20, beta, /*seed=*/7);
    ASSERT_TRUE(parts.ok()) << parts.status().message();
    ASSERT_EQ(parts->size(), 20u);
    expect_exact_cover(*parts, 5000);
    for (const auto& p : *parts) EXPECT_GE(p.size(), 10u) << "beta " << beta;
  }
}

TEST(PartitionDirichlet, DeterministicBySeed) {
  const torch::Tensor labels = balanced_labels(2000);
  Result<Partition> a = partition_dirichlet(labels, 10, 0.5, /*seed=*/11);
  Result<Partition> b = partition_dirichlet(labels, 10, 0.5, /*seed=*/11);
  Result<Partition> c = partition_dirichlet(labels, 10, 0.5, /*seed=*/12);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
}

TEST(PartitionDirichlet, SkewGrowsAsBetaShrinks) {
  const torch::Tensor labels = balanced_labels(10000);
  std::vector<double> max_share, tv;
  for (double beta : {100.0, 0.5, 0.1}) {
    Result<Partition> parts = partition_dirichlet(labels, 20, beta, /*seed=*/5);
    ASSERT_TRUE(parts.ok()) << parts.status().message();
    max_share.push_back(mean_max_share(*parts, labels));
    tv.push_back(mean_tv_distance(*parts, labels));
  }
  // beta = 100, 0.5, 0.1: strictly more skewed, by a clear margin.
  EXPECT_LT(max_share[0], 0.2);
  EXPECT_GT(max_share[1], max_share[0] + 0.1);
  EXPECT_GT(max_share[2], max_share[1] + 0.1);
  EXPECT_LT(tv[0], 0.1);
  EXPECT_GT(tv[1], tv[0] + 0.1);
  EXPECT_GT(tv[2], tv[1] + 0.05);
}

TEST(PartitionDirichlet, FullSizeIsFast) {
  const torch::Tensor labels = balanced_labels(60000);
  Result<Partition> parts = partition_dirichlet(labels, 100, 0.1, /*seed=*/1);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  expect_exact_cover(*parts, 60000);
}

TEST(PartitionDirichlet, Errors) {
  const torch::Tensor labels = balanced_labels(100);
  const auto code = [&](const torch::Tensor& l, int clients, double beta) {
    return partition_dirichlet(l, clients, beta, /*seed=*/0).status().code();
  };
  EXPECT_EQ(code(labels, 10, 0.0), Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 10, -1.0), Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 10, std::nan("")), Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 10, std::numeric_limits<double>::infinity()),
            Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 0, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 101, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(labels.to(torch::kFloat), 10, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(labels.reshape({10, 10}), 10, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(labels - 1, 10, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(torch::Tensor(), 10, 0.5), Code::kInvalidArgument);
  EXPECT_EQ(code(labels, 100, 0.5), Code::kOk);
  EXPECT_EQ(code(labels.to(torch::kUInt8), 10, 0.5), Code::kOk);
}

TEST(PartitionBySpec, NamesTheTwoPartitionsAndRefusesOthers) {
  const torch::Tensor labels = torch::arange(200) % 10;
  EXPECT_EQ(partition_by_spec("iid", labels, 4, 3).value(), partition_iid(200, 4, 3).value());
  EXPECT_EQ(partition_by_spec("dirichlet:0.5", labels, 4, 3).value(),
            partition_dirichlet(labels, 4, 0.5, 3).value());
  for (const char* bad : {"dirichlet:", "dirichlet:x", "dirichlet:0.5x", "niid", ""}) {
    EXPECT_EQ(partition_by_spec(bad, labels, 4, 3).status().code(), Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(partition_by_spec("dirichlet:-1", labels, 4, 3).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace fedvar

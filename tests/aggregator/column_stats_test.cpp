// The column statistics against a sort of each column, for every n up to 13,
// every cut, both float dtypes, a width that leaves a partial last block, and
// columns with ties.
#include "aggregator/column_stats.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fedvar::aggregator {
namespace {

torch::Tensor rows(int64_t n, torch::ScalarType dtype) {
  torch::manual_seed(n);
  auto x = torch::randn({n, 1000}, torch::dtype(dtype));
  x.narrow(1, 0, 100).copy_(torch::randint(0, 3, {n, 100}).to(dtype));  // ties
  return x;
}

TEST(ColumnStats, MedianIsTheMiddleOfEachSortedColumn) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (int64_t n = 1; n <= 13; ++n) {
      const auto x = rows(n, dtype);
      const auto sorted = std::get<0>(x.sort(/*dim=*/0));
      const auto expected =
          n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      const auto got = column_median(x);
      EXPECT_EQ(got.scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(got, expected)) << "n = " << n;
    }
  }
}

TEST(ColumnStats, TrimmedMeanDropsTheCutSmallestAndLargest) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (int64_t n = 1; n <= 13; ++n) {
      const auto x = rows(n, dtype);
      const auto sorted = std::get<0>(x.sort(/*dim=*/0));
      for (int64_t cut = 0; 2 * cut < n; ++cut) {
        const auto expected =
            sorted.narrow(0, cut, n - 2 * cut).to(torch::kFloat64).mean(/*dim=*/0);
        const auto got = column_trimmed_mean(x, cut);
        EXPECT_EQ(got.scalar_type(), dtype);
        EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), expected, 1e-6, 1e-7))
            << "n = " << n << ", cut = " << cut;
      }
    }
  }
}

TEST(ColumnStats, ANonContiguousInputIsReadAsItsValues) {
  const auto x = rows(7, torch::kFloat32).t().contiguous().t();  // column-major
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(torch::equal(column_median(x), column_median(x.contiguous())));
}

}  // namespace
}  // namespace fedvar::aggregator

#include "aggregator/column_stats.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace fedvar::aggregator {
namespace {

// Columns per block: with the running order statistics of k values per
// column, k x 256 values stay in the core's cache.
constexpr int64_t kBlockColumns = 256;

// The k smallest (kLargest: largest) values of each column of a block seen so
// far, sorted: best[r * width + j] is column j's r-th. A min/max insertion
// network, branchless, so that the compiler vectorizes it across columns:
// per value, 2k comparisons that never mispredict, which for the small n of a
// round beats a selection's branches.
template <typename T, bool kLargest>
void insert_extremes(T* best, int64_t k, T* v, int64_t width) {
  for (int64_t r = 0; r < k; ++r) {
    T* row = best + r * width;
    for (int64_t j = 0; j < width; ++j) {
      const T kept = row[j];
      const T x = v[j];
      row[j] = kLargest ? std::max(kept, x) : std::min(kept, x);
      v[j] = kLargest ? std::min(kept, x) : std::max(kept, x);
    }
  }
}

// What a block of columns [start, start + width) of x ([n, d], row-major)
// needs: the `low` smallest and `high` largest values of each column, and
// each column's sum in float64.
template <typename T>
struct BlockStats {
  std::vector<T> lowest, highest, scratch;
  std::vector<double> sum;

  BlockStats(int64_t low, int64_t high)
      : lowest(static_cast<size_t>(low * kBlockColumns)),
        highest(static_cast<size_t>(high * kBlockColumns)),
        scratch(kBlockColumns),
        sum(kBlockColumns) {}

  void gather(const T* x, int64_t n, int64_t d, int64_t start, int64_t width, int64_t low,
              int64_t high) {
    std::fill(lowest.begin(), lowest.end(), std::numeric_limits<T>::infinity());
    std::fill(highest.begin(), highest.end(), -std::numeric_limits<T>::infinity());
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x + i * d + start;
      for (int64_t j = 0; j < width; ++j) sum[static_cast<size_t>(j)] += row[j];
      if (low > 0) {
        std::copy(row, row + width, scratch.begin());
        insert_extremes<T, false>(lowest.data(), low, scratch.data(), width);
      }
      if (high > 0) {
        std::copy(row, row + width, scratch.begin());
        insert_extremes<T, true>(highest.data(), high, scratch.data(), width);
      }
    }
  }
  // Column j's r-th smallest (r < low) or r-th largest (r < high).
  T low_at(int64_t r, int64_t j, int64_t width) const {
    return lowest[static_cast<size_t>(r * width + j)];
  }
  T high_at(int64_t r, int64_t j, int64_t width) const {
    return highest[static_cast<size_t>(r * width + j)];
  }
};

// For each block of columns, gathers its BlockStats and calls
// finish(stats, start, width) to write the block's outputs.
template <typename T, typename Finish>
void for_each_block(const torch::Tensor& x, int64_t low, int64_t high, Finish finish) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const T* src = x.data_ptr<T>();
  const int64_t blocks = (d + kBlockColumns - 1) / kBlockColumns;
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    BlockStats<T> stats(low, high);
    for (int64_t b = first; b < last; ++b) {
      const int64_t start = b * kBlockColumns;
      const int64_t width = std::min(kBlockColumns, d - start);
      // The stats' rows are `width` apart in the last, narrower block.
      stats.gather(src, n, d, start, width, low, high);
      finish(stats, start, width);
    }
  });
}

}  // namespace

torch::Tensor column_median(const torch::Tensor& x) {
  const torch::Tensor rows = x.contiguous();
  const int64_t n = rows.size(0);
  torch::Tensor out = torch::empty({rows.size(1)}, rows.options());
  AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "column_median", [&] {
    scalar_t* dst = out.data_ptr<scalar_t>();
    const int64_t mid = n / 2;  // the n / 2 + 1 smallest hold the median
    for_each_block<scalar_t>(
        rows, mid + 1, 0, [&](const auto& s, int64_t start, int64_t w) {
          for (int64_t j = 0; j < w; ++j) {
            const scalar_t upper = s.low_at(mid, j, w);
            dst[start + j] = n % 2 == 1 ? upper : (s.low_at(mid - 1, j, w) + upper) / 2;
          }
        });
  });
  return out;
}

torch::Tensor column_trimmed_mean(const torch::Tensor& x, int64_t cut) {
  const torch::Tensor rows = x.contiguous();
  const int64_t n = rows.size(0);
  torch::Tensor out = torch::empty({rows.size(1)}, rows.options());
  AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "column_trimmed_mean", [&] {
    scalar_t* dst = out.data_ptr<scalar_t>();
    const auto kept = static_cast<double>(n - 2 * cut);
    for_each_block<scalar_t>(rows, cut, cut,
                             [&](const auto& s, int64_t start, int64_t w) {
                               for (int64_t j = 0; j < w; ++j) {
                                 double sum = s.sum[static_cast<size_t>(j)];
                                 for (int64_t r = 0; r < cut; ++r) {
                                   sum -= static_cast<double>(s.low_at(r, j, w)) +
                                          static_cast<double>(s.high_at(r, j, w));
                                 }
                                 dst[start + j] = static_cast<scalar_t>(sum / kept);
                               }
                             });
  });
  return out;
}

}  // namespace fedvar::aggregator

// Per-coordinate order statistics of a round's rows ([n, d], one row per
// client) for the coordinate-wise rules (median, trimmed mean). The matrix is
// read once, row by row, a block of columns at a time, keeping each column's
// few smallest or largest values in a small sorted buffer; no [n, d]
// temporary (a sorted copy, sort indices) is made. Parallel over column
// blocks on ATen's threads. Callers validate the shape: x is [n, d] float32
// or float64 with n, d >= 1, on the CPU.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace fedvar::aggregator {

// [d] in x's dtype: each column's median, (lower + upper) / 2 for even n as
// numpy computes it.
torch::Tensor column_median(const torch::Tensor& x);

// [d] in x's dtype: each column's mean over its values of rank cut .. n-cut-1
// (the `cut` smallest and largest dropped), summed in float64.
// Requires 0 <= cut and 2 * cut < n.
torch::Tensor column_trimmed_mean(const torch::Tensor& x, int64_t cut);

}  // namespace fedvar::aggregator

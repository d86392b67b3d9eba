// Dataset: images and labels held in memory as tensors, plus the index
// arithmetic every user of a data set needs (ranges, subsets).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar {

struct Dataset {
  torch::Tensor images;  // uint8 [N, C, H, W], pixel values 0..255
  torch::Tensor labels;  // int64 [N]
  int64_t num_classes = 10;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  // Rows [begin, end) — views, no copy. Bounds as in Python (negative counts
  // from the end, then clamped to [0, size()]).
  Dataset slice(int64_t begin, int64_t end) const;
  // Rows at `indices` (int64 tensor or vector) — a copy. Precondition: every
  // index is in [0, size()) (partition / parse_range output always is).
  Dataset subset(const torch::Tensor& indices) const;
  Dataset subset(const std::vector<int64_t>& indices) const;
};

// A half-open index range [begin, end) of a split.
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Parses "A:B" (Python slice syntax without step: "A:", ":B", negative
// indices count from the end, e.g. "-1000:" is the last 1000 rows) against a
// split of `size` rows. Empty or out-of-range ranges are kInvalidArgument.
Result<IndexRange> parse_range(const std::string& spec, int64_t size);

// Loads split "train" or "test" from `dir`, detecting the format from the
// files present: MNIST-style IDX (train-images-idx3-ubyte[.gz], ...), CIFAR-10
// binary (data_batch_{1..5}.bin, test_batch.bin) or CIFAR-100 binary
// (train.bin, test.bin, fine labels). Missing or corrupt files give a Status.
Result<Dataset> load_dataset(const std::string& dir, const std::string& split);

}  // namespace fedvar

// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
#pragma once

#include <torch/types.h>

#include <string>

#include "core/dataset.h"
#include "core/status.h"

namespace fedvar {

// Reads a regular IDX file (else kInvalidArgument) of unsigned bytes (0x08),
// 1..4 dims, raw or gzip, into a uint8 tensor; read no further than its header
// declares (<= 1 GiB). Bad magic/type, truncated or trailing data: kDataLoss.
Result<torch::Tensor> read_idx(const std::string& path);

// Loads `<dir>/<prefix>-images-idx3-ubyte[.gz]` and the matching labels
// (prefix "train" or "t10k") as a 1-channel Dataset of 10 classes.
Result<Dataset> load_idx_split(const std::string& dir, const std::string& split);

}  // namespace fedvar

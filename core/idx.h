// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
#pragma once

#include <torch/types.h>

#include <string>

#include "core/dataset.h"
#include "core/status.h"

namespace fedvar {

// Reads an IDX file of unsigned bytes (type 0x08) with 1..4 dimensions into a
// uint8 tensor of that shape. Gzip is detected by its magic bytes. Wrong
// magic, unsupported type, truncated data: kDataLoss naming the file.
Result<torch::Tensor> read_idx(const std::string& path);

// Loads `<dir>/<prefix>-images-idx3-ubyte[.gz]` and the matching labels
// (prefix "train" or "t10k") as a 1-channel Dataset of 10 classes.
Result<Dataset> load_idx_split(const std::string& dir, const std::string& split);

}  // namespace fedvar

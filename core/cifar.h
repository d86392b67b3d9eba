// The CIFAR-10 / CIFAR-100 binary formats (the "-binary" archives).
#pragma once

#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/status.h"

namespace fedvar {

enum class CifarVariant { kCifar10, kCifar100 };

// Reads records from `files` (CIFAR-10: <label><3072 pixels>; CIFAR-100:
// <coarse><fine><3072>, fine used) into a 3x32x32 Dataset. Not whole records:
// kDataLoss; not regular files, or over 4 GiB in all: kInvalidArgument.
Result<Dataset> read_cifar_files(const std::vector<std::string>& files,
                                 CifarVariant variant);

// Loads split "train"/"test" from a directory of the extracted archive.
Result<Dataset> load_cifar_split(const std::string& dir, const std::string& split,
                                 CifarVariant variant);

}  // namespace fedvar

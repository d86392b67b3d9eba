#include "core/dataset.h"

#include <torch/torch.h>

#include <charconv>
#include <filesystem>
#include <system_error>

#include "core/cifar.h"
#include "core/idx.h"

namespace fedvar {

namespace {

namespace fs = std::filesystem;

// Parses one side of "A:B": empty means `fallback`; a negative value counts
// from the end. Returns false on anything but an optionally signed integer.
bool parse_bound(const std::string& text, int64_t size, int64_t fallback, int64_t* out) {
  if (text.empty()) {
    *out = fallback;
    return true;
  }
  int64_t value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last) return false;
  *out = value < 0 ? value + size : value;
  return true;
}

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// The official archives extract into a folder of this name; accept either
// that folder or its parent.
fs::path resolve_cifar_dir(const fs::path& dir, const char* archive_folder) {
  const fs::path nested = dir / archive_folder;
  return path_exists(nested) ? nested : dir;
}

}  // namespace

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  Dataset out;
  out.images = images.slice(/*dim=*/0, begin, end);
  out.labels = labels.slice(/*dim=*/0, begin, end);
  out.num_classes = num_classes;
  return out;
}

Dataset Dataset::subset(const torch::Tensor& indices) const {
  const torch::Tensor index = indices.to(torch::kLong).reshape({-1});
  Dataset out;
  out.images = images.index_select(/*dim=*/0, index);
  out.labels = labels.index_select(/*dim=*/0, index);
  out.num_classes = num_classes;
  return out;
}

Dataset Dataset::subset(const std::vector<int64_t>& indices) const {
  return subset(torch::tensor(indices, torch::kLong));
}

Result<IndexRange> parse_range(const std::string& spec, int64_t size) {
  const auto invalid = [&](const std::string& why) {
    return Status::InvalidArgument("range \"" + spec + "\" of a split of " +
                                   std::to_string(size) + " rows: " + why);
  };
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) return invalid("expected A:B, A: or :B");
  IndexRange range;
  if (!parse_bound(spec.substr(0, colon), size, 0, &range.begin) ||
      !parse_bound(spec.substr(colon + 1), size, size, &range.end)) {
    return invalid("bounds must be integers");
  }
  if (range.begin < 0 || range.end < 0) return invalid("starts before row 0");
  if (range.begin > size || range.end > size) return invalid("past the end");
  if (range.end <= range.begin) return invalid("empty");
  return range;
}

Result<Dataset> load_dataset(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test") {
    return Status::InvalidArgument("split must be \"train\" or \"test\", got \"" + split +
                                   "\"");
  }
  const fs::path root(dir);
  if (!path_exists(root)) return Status::NotFound("data directory " + dir);
  for (const char* name : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"}) {
    if (path_exists(root / name) || path_exists(root / (std::string(name) + ".gz"))) {
      return load_idx_split(dir, split);
    }
  }
  const fs::path c10 = resolve_cifar_dir(root, "cifar-10-batches-bin");
  if (path_exists(c10 / "data_batch_1.bin") || path_exists(c10 / "test_batch.bin")) {
    return load_cifar_split(c10.string(), split, CifarVariant::kCifar10);
  }
  const fs::path c100 = resolve_cifar_dir(root, "cifar-100-binary");
  if (path_exists(c100 / "train.bin") || path_exists(c100 / "test.bin")) {
    return load_cifar_split(c100.string(), split, CifarVariant::kCifar100);
  }
  return Status::NotFound("no IDX, CIFAR-10 or CIFAR-100 files in " + dir);
}

}  // namespace fedvar

#include "core/cifar.h"

#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

namespace fedvar {

namespace {

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072, channel-major
constexpr int kCifar10Batches = 5;

// The layout of one record of a variant.
struct RecordFormat {
  int64_t label_bytes;     // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
  int64_t label_offset;    // which label byte is the label used
  int64_t num_classes;     // range of that label
  int64_t coarse_classes;  // range of the other label byte (CIFAR-100), or 0
  int64_t record_bytes() const { return label_bytes + kPixelBytes; }
};

RecordFormat format_of(CifarVariant variant) {
  if (variant == CifarVariant::kCifar100) return {2, 1, 100, 20};
  return {1, 0, 10, 0};
}

// Checks the label byte(s) at the start of one record.
Status check_label(const char* record, const RecordFormat& format) {
  const auto label = static_cast<unsigned char>(record[format.label_offset]);
  if (label >= format.num_classes) {
    return Status::DataLoss("label " + std::to_string(label) + " out of range 0.." +
                            std::to_string(format.num_classes - 1));
  }
  const auto coarse = static_cast<unsigned char>(record[0]);
  if (format.coarse_classes > 0 && coarse >= format.coarse_classes) {
    return Status::DataLoss("coarse label " + std::to_string(coarse) +
                            " out of range 0.." +
                            std::to_string(format.coarse_classes - 1));
  }
  return Status::Ok();
}

// Appends the records of `path` to `bytes` after checking they are whole.
Status append_records(const std::string& path, const RecordFormat& format,
                      std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  const std::string data((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  if (in.bad()) return Status::DataLoss("error reading " + path);
  const auto size = static_cast<int64_t>(data.size());
  if (size == 0 || size % format.record_bytes() != 0) {
    return Status::DataLoss(path + ": " + std::to_string(size) +
                            " bytes is not a whole, non-zero number of " +
                            std::to_string(format.record_bytes()) + "-byte records");
  }
  const int64_t records = size / format.record_bytes();
  for (int64_t r = 0; r < records; ++r) {
    const char* record = data.data() + r * format.record_bytes();
    const Status status = check_label(record, format);
    if (!status.ok()) {
      return status.with_context(path + ": record " + std::to_string(r));
    }
  }
  bytes->append(data);
  return Status::Ok();
}

}  // namespace

Result<Dataset> read_cifar_files(const std::vector<std::string>& files,
                                 CifarVariant variant) {
  if (files.empty()) return Status::InvalidArgument("no CIFAR files given");
  const RecordFormat format = format_of(variant);
  std::string bytes;
  for (const std::string& path : files) {
    FEDVAR_RETURN_IF_ERROR(append_records(path, format, &bytes));
  }
  const int64_t n = static_cast<int64_t>(bytes.size()) / format.record_bytes();
  try {
    torch::Tensor table = torch::empty({n, format.record_bytes()}, torch::kUInt8);
    std::memcpy(table.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    Dataset out;
    out.images = table.slice(/*dim=*/1, format.label_bytes, format.record_bytes())
                     .reshape({n, kChannels, kSide, kSide})
                     .contiguous();
    out.labels = table.select(/*dim=*/1, format.label_offset).to(torch::kLong);
    out.num_classes = format.num_classes;
    return out;
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("reading CIFAR: ") + e.what_without_backtrace());
  }
}

Result<Dataset> load_cifar_split(const std::string& dir, const std::string& split,
                                 CifarVariant variant) {
  if (split != "train" && split != "test") {
    return Status::InvalidArgument("CIFAR split must be train or test, got " + split);
  }
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  if (variant == CifarVariant::kCifar100) {
    names.push_back(split + ".bin");
  } else if (split == "test") {
    names.push_back("test_batch.bin");
  } else {
    for (int i = 1; i <= kCifar10Batches; ++i) {
      names.push_back("data_batch_" + std::to_string(i) + ".bin");
    }
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const std::string& name : names) {
    const fs::path path = fs::path(dir) / name;
    if (!fs::exists(path, ec)) return Status::NotFound("missing " + path.string());
    files.push_back(path.string());
  }
  return read_cifar_files(files, variant);
}

}  // namespace fedvar

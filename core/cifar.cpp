#include "core/cifar.h"

#include <torch/torch.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "core/file_io.h"

namespace fedvar {

namespace {

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072, channel-major
constexpr int kCifar10Batches = 5;
// The most bytes a set of CIFAR files may hold: 4 GiB, 25x CIFAR-100's train.
constexpr uint64_t kMaxCifarBytes = uint64_t{4} << 30;

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

// Opens `path` and checks that it holds a whole, non-zero number of records.
Result<InputFile> open_records(const std::string& path, const RecordFormat& format) {
  FEDVAR_ASSIGN_OR_RETURN(InputFile file, InputFile::open(path));
  const uint64_t size = file.size();
  const auto record = static_cast<uint64_t>(format.record_bytes());
  if (size == 0 || size % record != 0) {
    return Status::DataLoss(path + ": " + std::to_string(size) +
                            " bytes is not a whole, non-zero number of " +
                            std::to_string(record) + "-byte records");
  }
  return Result<InputFile>(std::move(file));
}

// Reads all of `file` (`records` records) into `out` and checks each label.
Status read_records(InputFile& file, int64_t records, const RecordFormat& format,
                    char* out) {
  const auto size = static_cast<size_t>(records * format.record_bytes());
  FEDVAR_ASSIGN_OR_RETURN(const size_t got, file.read(out, size));
  char extra = 0;
  FEDVAR_ASSIGN_OR_RETURN(const size_t more, file.read(&extra, 1));
  if (got != size || more != 0) {
    return Status::DataLoss(file.path() + " changed size while being read");
  }
  for (int64_t r = 0; r < records; ++r) {
    const Status status = check_label(out + r * format.record_bytes(), format);
    if (!status.ok()) {
      return status.with_context(file.path() + ": record " + std::to_string(r));
    }
  }
  return Status::Ok();
}

Dataset make_dataset(const torch::Tensor& table, const RecordFormat& format) {
  const int64_t n = table.size(0);
  Dataset out;
  out.images = table.slice(/*dim=*/1, format.label_bytes, format.record_bytes())
                   .reshape({n, kChannels, kSide, kSide})
                   .contiguous();
  out.labels = table.select(/*dim=*/1, format.label_offset).to(torch::kLong);
  out.num_classes = format.num_classes;
  return out;
}

}  // namespace

Result<Dataset> read_cifar_files(const std::vector<std::string>& files,
                                 CifarVariant variant) {
  if (files.empty()) return Status::InvalidArgument("no CIFAR files given");
  const RecordFormat format = format_of(variant);
  std::vector<InputFile> inputs;
  uint64_t total = 0;
  for (const std::string& path : files) {
    FEDVAR_ASSIGN_OR_RETURN(InputFile file, open_records(path, format));
    total += file.size();
    if (total > kMaxCifarBytes) {
      return Status::InvalidArgument("the CIFAR files up to " + path +
                                     " hold more than the " +
                                     std::to_string(kMaxCifarBytes) + " bytes allowed");
    }
    inputs.push_back(std::move(file));
  }
  try {
    const auto n = static_cast<int64_t>(total) / format.record_bytes();
    torch::Tensor table = torch::empty({n, format.record_bytes()}, torch::kUInt8);
    auto* out = reinterpret_cast<char*>(table.data_ptr<uint8_t>());
    for (InputFile& file : inputs) {
      const auto records = static_cast<int64_t>(file.size()) / format.record_bytes();
      FEDVAR_RETURN_IF_ERROR(read_records(file, records, format, out));
      out += records * format.record_bytes();
    }
    return make_dataset(table, format);
  } catch (const std::exception& e) {
    return status_from_exception("reading CIFAR", e);
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

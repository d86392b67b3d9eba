#include "core/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "core/file_io.h"

namespace fedvar {

namespace {

constexpr unsigned char kIdxUnsignedByte = 0x08;  // the only supported type
constexpr int kMaxDims = 4;
constexpr int64_t kIdxClasses = 10;  // MNIST and Fashion-MNIST
// The most data one file may declare: 1 GiB, twice EMNIST's largest file. A
// file is read no further than its header declares, so this bounds the work.
constexpr uint64_t kMaxIdxDataBytes = uint64_t{1} << 30;
constexpr size_t kChunkBytes = size_t{1} << 16;  // read and inflate step
constexpr uInt kMaxZlibChunk = uInt{1} << 30;    // fits zlib's uInt counters

// The bytes of an IDX file in order: read as they are, or inflated from gzip
// (one or more members) only as far as they are asked for. Not movable: zlib's
// state points back at the z_stream.
class IdxStream {
 public:
  explicit IdxStream(InputFile file) : file_(std::move(file)), in_(kChunkBytes) {}
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;
  ~IdxStream() {
    if (gzip_) inflateEnd(&zs_);
  }

  // Reads the first bytes and sets up inflation if they are gzip's magic.
  Status start() {
    FEDVAR_RETURN_IF_ERROR(refill());
    gzip_ = avail_ >= 2 && static_cast<unsigned char>(in_[0]) == 0x1f &&
            static_cast<unsigned char>(in_[1]) == 0x8b;
    if (gzip_ && inflateInit2(&zs_, 15 + 16) != Z_OK) {
      gzip_ = false;
      return Status::Internal("zlib inflateInit2 failed for " + file_.path());
    }
    return Status::Ok();
  }

  bool gzip() const { return gzip_; }
  uint64_t file_size() const { return file_.size(); }

  // Fills `out` with up to `n` bytes; fewer only at the end of the data.
  Result<size_t> read(char* out, size_t n) {
    if (n == 0) return size_t{0};  // `out` may be null then
    return gzip_ ? inflate_to(out, n) : copy_to(out, n);
  }

 private:
  Status refill() {
    FEDVAR_ASSIGN_OR_RETURN(avail_, file_.read(in_.data(), in_.size()));
    next_ = 0;
    return Status::Ok();
  }

  Result<size_t> copy_to(char* out, size_t n) {
    const size_t buffered = std::min(n, avail_ - next_);
    std::memcpy(out, in_.data() + next_, buffered);
    next_ += buffered;
    if (buffered == n) return n;
    FEDVAR_ASSIGN_OR_RETURN(const size_t direct,
                            file_.read(out + buffered, n - buffered));
    return buffered + direct;
  }

  Result<size_t> inflate_to(char* out, size_t n);
  Status corrupt(const std::string& why) const {
    return Status::DataLoss(file_.path() + ": corrupt or truncated gzip data (" + why +
                            ")");
  }

  InputFile file_;
  std::vector<char> in_;
  size_t avail_ = 0;  // bytes of in_ holding data
  size_t next_ = 0;   // the first of them not yet used
  bool gzip_ = false;
  bool ended_ = false;  // the last gzip member has ended
  z_stream zs_{};
};

Result<size_t> IdxStream::inflate_to(char* out, size_t n) {
  size_t done = 0;
  while (done < n && !ended_) {
    if (next_ == avail_) FEDVAR_RETURN_IF_ERROR(refill());
    if (avail_ == 0) return corrupt("unexpected end of compressed data");
    zs_.next_in = reinterpret_cast<Bytef*>(in_.data() + next_);
    zs_.avail_in = static_cast<uInt>(avail_ - next_);
    zs_.next_out = reinterpret_cast<Bytef*>(out + done);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n - done, kMaxZlibChunk));
    const uInt room = zs_.avail_out;
    const int rc = inflate(&zs_, Z_NO_FLUSH);
    done += room - zs_.avail_out;
    next_ = avail_ - zs_.avail_in;
    if (rc == Z_STREAM_END) {
      if (next_ == avail_) FEDVAR_RETURN_IF_ERROR(refill());
      ended_ = avail_ == 0;  // else another member follows
      if (!ended_ && inflateReset(&zs_) != Z_OK) return corrupt("inflateReset failed");
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return corrupt(zs_.msg != nullptr ? zs_.msg : "inflate failed");
    }
  }
  return done;
}

uint32_t read_be32(const char* bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i)
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// Reads and validates the header of an IDX stream and returns its shape.
Result<std::vector<int64_t>> read_idx_header(IdxStream& stream, const std::string& path) {
  char magic[4];
  FEDVAR_ASSIGN_OR_RETURN(const size_t got, stream.read(magic, sizeof(magic)));
  if (got < sizeof(magic) || magic[0] != 0 || magic[1] != 0) {
    return Status::DataLoss(path + ": bad IDX magic (expected 00 00 <type> <dims>)");
  }
  const auto type = static_cast<unsigned char>(magic[2]);
  if (type != kIdxUnsignedByte) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", type);
    return Status::DataLoss(path + ": unsupported IDX type " + hex +
                            " (only 0x08 unsigned byte)");
  }
  const int dims = static_cast<unsigned char>(magic[3]);
  if (dims < 1 || dims > kMaxDims) {
    return Status::DataLoss(path + ": unsupported IDX dimension count " +
                            std::to_string(dims) + " (1..4)");
  }
  char sizes[4 * kMaxDims];
  const size_t want = 4 * static_cast<size_t>(dims);
  FEDVAR_ASSIGN_OR_RETURN(const size_t have, stream.read(sizes, want));
  if (have < want) {
    return Status::DataLoss(path + ": truncated IDX header: expected " +
                            std::to_string(4 + want) + " bytes, got " +
                            std::to_string(4 + have));
  }
  std::vector<int64_t> shape;
  for (int d = 0; d < dims; ++d) shape.push_back(read_be32(sizes + 4 * d));
  return shape;
}

// Bytes of data the shape needs; UINT64_MAX when that overflows.
uint64_t idx_data_bytes(const std::vector<int64_t>& shape) {
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  uint64_t product = 1;
  for (int64_t d : shape) {
    const auto dim = static_cast<uint64_t>(d);
    if (product > UINT64_MAX / dim) return UINT64_MAX;
    product *= dim;
  }
  return product;
}

std::string describe_shape(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

Result<std::string> find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& name : {stem, stem + ".gz"}) {
    const fs::path path = fs::path(dir) / name;
    if (fs::exists(path, ec)) return path.string();
  }
  return Status::NotFound("missing " + (fs::path(dir) / stem).string() + "[.gz]");
}

}  // namespace

Result<torch::Tensor> read_idx(const std::string& path) {
  FEDVAR_ASSIGN_OR_RETURN(InputFile file, InputFile::open(path));
  IdxStream stream(std::move(file));
  FEDVAR_RETURN_IF_ERROR(stream.start());
  FEDVAR_ASSIGN_OR_RETURN(std::vector<int64_t> shape, read_idx_header(stream, path));
  const uint64_t expected = idx_data_bytes(shape);
  const auto mismatch = [&](bool truncated, const std::string& actual) {
    return Status::DataLoss(
        path + ": IDX data " + (truncated ? "truncated" : "too long") + ": dims " +
        describe_shape(shape) + " need " +
        (expected == UINT64_MAX ? "over 2^64" : std::to_string(expected)) +
        " bytes, got " + actual);
  };
  if (!stream.gzip()) {  // the size is known before reading
    const uint64_t actual = stream.file_size() - (4 + 4 * shape.size());
    if (actual != expected) return mismatch(actual < expected, std::to_string(actual));
  }
  if (expected > kMaxIdxDataBytes) {
    return Status::DataLoss(path + ": IDX dims " + describe_shape(shape) +
                            " declare more than the " + std::to_string(kMaxIdxDataBytes) +
                            " bytes of data allowed");
  }
  torch::Tensor out;
  try {
    out = torch::empty(shape, torch::kUInt8);
  } catch (const std::exception& e) {
    return status_from_exception(path, e);
  }
  auto* data = reinterpret_cast<char*>(out.data_ptr<uint8_t>());
  FEDVAR_ASSIGN_OR_RETURN(const size_t got, stream.read(data, expected));
  if (got < expected) return mismatch(true, std::to_string(got));
  char extra = 0;  // one byte past the declared data shows trailing bytes
  FEDVAR_ASSIGN_OR_RETURN(const size_t more, stream.read(&extra, 1));
  if (more > 0) return mismatch(false, "more");
  return out;
}

Result<Dataset> load_idx_split(const std::string& dir, const std::string& split) {
  std::string prefix = split;
  if (split == "test") prefix = "t10k";
  if (prefix != "train" && prefix != "t10k") {
    return Status::InvalidArgument("IDX split must be train or test, got " + split);
  }
  FEDVAR_ASSIGN_OR_RETURN(std::string images_path,
                          find_idx_file(dir, prefix + "-images-idx3-ubyte"));
  FEDVAR_ASSIGN_OR_RETURN(std::string labels_path,
                          find_idx_file(dir, prefix + "-labels-idx1-ubyte"));
  FEDVAR_ASSIGN_OR_RETURN(torch::Tensor images, read_idx(images_path));
  FEDVAR_ASSIGN_OR_RETURN(torch::Tensor labels, read_idx(labels_path));
  if (images.dim() != 3) {
    return Status::DataLoss(images_path + ": expected 3 dimensions [N, H, W], got " +
                            std::to_string(images.dim()));
  }
  if (labels.dim() != 1) {
    return Status::DataLoss(labels_path + ": expected 1 dimension [N], got " +
                            std::to_string(labels.dim()));
  }
  if (images.size(0) != labels.size(0)) {
    return Status::DataLoss(images_path + " has " + std::to_string(images.size(0)) +
                            " images but " + labels_path + " has " +
                            std::to_string(labels.size(0)) + " labels");
  }
  const int64_t max_label = labels.numel() > 0 ? labels.max().item<int64_t>() : 0;
  if (max_label >= kIdxClasses) {
    return Status::DataLoss(labels_path + ": label " + std::to_string(max_label) +
                            " out of range 0.." + std::to_string(kIdxClasses - 1));
  }
  Dataset out;
  out.images = images.unsqueeze(/*dim=*/1);  // [N, 1, H, W]
  out.labels = labels.to(torch::kLong);
  out.num_classes = kIdxClasses;
  return out;
}

}  // namespace fedvar

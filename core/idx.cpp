#include "core/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

namespace fedvar {

namespace {

constexpr unsigned char kIdxUnsignedByte = 0x08;  // the only supported type
constexpr int kMaxDims = 4;
constexpr int64_t kIdxClasses = 10;                // MNIST and Fashion-MNIST
constexpr size_t kMaxZlibChunk = size_t{1} << 30;  // fits zlib's uInt counters

Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) return Status::DataLoss("error reading " + path);
  return bytes;
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Inflates a (possibly multi-member) gzip stream held in memory.
Result<std::string> gunzip(const std::string& packed, const std::string& path) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    return Status::Internal("zlib inflateInit2 failed for " + path);
  }
  if (packed.size() > kMaxZlibChunk) {
    inflateEnd(&zs);
    return Status::InvalidArgument(path + ": compressed file over 1 GiB");
  }
  std::string out(packed.size() * 4 + 4096, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  zs.avail_in = static_cast<uInt>(packed.size());
  size_t produced = 0;
  int rc = Z_OK;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(&out[produced]);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kMaxZlibChunk));
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = static_cast<size_t>(reinterpret_cast<char*>(zs.next_out) - out.data());
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      rc = inflateReset(&zs);  // another gzip member follows
      if (rc != Z_OK) break;
      continue;
    }
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) break;
  }
  const std::string zmsg = zs.msg ? zs.msg : "unexpected end of compressed data";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return Status::DataLoss(path + ": corrupt or truncated gzip data (" + zmsg + ")");
  }
  out.resize(produced);
  return out;
}

uint32_t read_be32(const std::string& bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  }
  return value;
}

// Validates the header of an IDX image in memory and returns its shape.
Result<std::vector<int64_t>> parse_idx_header(const std::string& bytes,
                                              const std::string& path) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    return Status::DataLoss(path + ": bad IDX magic (expected 00 00 <type> <dims>)");
  }
  const auto type = static_cast<unsigned char>(bytes[2]);
  if (type != kIdxUnsignedByte) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", type);
    return Status::DataLoss(path + ": unsupported IDX type " + hex +
                            " (only 0x08 unsigned byte)");
  }
  const int dims = static_cast<unsigned char>(bytes[3]);
  if (dims < 1 || dims > kMaxDims) {
    return Status::DataLoss(path + ": unsupported IDX dimension count " +
                            std::to_string(dims) + " (1..4)");
  }
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header) {
    return Status::DataLoss(path + ": truncated IDX header: expected " +
                            std::to_string(header) + " bytes, got " +
                            std::to_string(bytes.size()));
  }
  std::vector<int64_t> shape;
  for (int d = 0; d < dims; ++d) shape.push_back(read_be32(bytes, 4 + 4 * d));
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
  FEDVAR_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(path));
  if (is_gzip(bytes)) {
    FEDVAR_ASSIGN_OR_RETURN(bytes, gunzip(bytes, path));
  }
  FEDVAR_ASSIGN_OR_RETURN(std::vector<int64_t> shape, parse_idx_header(bytes, path));
  const size_t header = 4 + 4 * shape.size();
  const uint64_t actual = bytes.size() - header;
  const uint64_t expected = idx_data_bytes(shape);
  if (expected != actual) {
    const bool huge = expected == UINT64_MAX;
    return Status::DataLoss(path + ": IDX data " +
                            (actual < expected ? "truncated" : "too long") + ": dims " +
                            describe_shape(shape) + " need " +
                            (huge ? "over 2^64" : std::to_string(expected)) +
                            " bytes, got " + std::to_string(actual));
  }
  try {
    torch::Tensor out = torch::empty(shape, torch::kUInt8);
    std::memcpy(out.data_ptr<uint8_t>(), bytes.data() + header, actual);
    return out;
  } catch (const c10::Error& e) {
    return Status::Internal(path + ": " + e.what_without_backtrace());
  }
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

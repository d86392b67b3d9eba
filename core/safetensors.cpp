// safetensors reader and writer. The writer follows the reference Rust
// implementation (huggingface/safetensors `prepare`), which PyTorch's
// `safetensors.torch.save_file` calls: tensors ordered by dtype (the order of
// its `Dtype` enum, descending) then by name, compact JSON with
// "__metadata__" first, the header padded with spaces to a multiple of 8.
#include "core/safetensors.h"

#include "core/file_io.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

namespace fedvar {
namespace {

using Json = nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this host would need swaps");

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference's limit
constexpr size_t kLengthBytes = 8;                 // the u64 header length
// A valid header nests 3 deep (header, entry, shape); past this the header is
// refused before parsing, as printing or walking it would recurse per level.
constexpr int kMaxHeaderDepth = 8;
constexpr size_t kBriefChars = 48;  // how much of an untrusted value a message shows
const char kMetadataKey[] = "__metadata__";

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  uint64_t size;  // bytes per element
  int rank;       // position in the reference's `Dtype` enum (write order)
};

constexpr DtypeInfo kDtypes[] = {
    {"BOOL", torch::kBool, 1, 0},    {"U8", torch::kUInt8, 1, 1},
    {"I8", torch::kInt8, 1, 2},      {"I16", torch::kInt16, 2, 5},
    {"F16", torch::kFloat16, 2, 7},  {"BF16", torch::kBFloat16, 2, 8},
    {"I32", torch::kInt32, 4, 9},    {"F32", torch::kFloat32, 4, 11},
    {"F64", torch::kFloat64, 8, 12}, {"I64", torch::kInt64, 8, 13},
};

template <typename Predicate>
const DtypeInfo* find_dtype(Predicate matches) {
  for (const DtypeInfo& d : kDtypes) {
    if (matches(d)) return &d;
  }
  return nullptr;
}

// `text` cut to `limit` bytes, not inside a UTF-8 sequence, "..." marking a cut.
std::string cut(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return text.substr(0, end) + "...";
}

// An untrusted name or value for a message: a short prefix of it.
std::string brief(const std::string& text) { return cut(text, kBriefChars); }
std::string brief(const Json& value) {
  return cut(value.dump(-1, ' ', false, Json::error_handler_t::replace), kBriefChars);
}

std::string tensor_label(const std::string& n) { return "tensor '" + brief(n) + "'"; }

// One tensor's header entry, validated on its own.
struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Status parse_shape(const Json& shape, Entry* entry, uint64_t* nbytes) {
  const std::string who = tensor_label(entry->name);
  uint64_t count = 1;
  for (const Json& dim : shape) {
    if (!dim.is_number_unsigned()) {
      return Status::DataLoss(who + ": shape " + brief(shape) +
                              " has an entry that is not a non-negative integer");
    }
    const uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(count, d, &count)) {
      return Status::DataLoss(who + ": shape " + brief(shape) + " overflows");
    }
    entry->shape.push_back(static_cast<int64_t>(d));
  }
  if (__builtin_mul_overflow(count, entry->dtype->size, nbytes)) {
    return Status::DataLoss(who + ": shape " + brief(shape) + " overflows");
  }
  return Status::Ok();
}

Status parse_offsets(const Json& offsets, Entry* entry) {
  const std::string who = tensor_label(entry->name);
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return Status::DataLoss(who + ": data_offsets " + brief(offsets) +
                            " is not a pair of non-negative integers");
  }
  entry->begin = offsets[0].get<uint64_t>();
  entry->end = offsets[1].get<uint64_t>();
  if (entry->begin > entry->end) {
    return Status::DataLoss(who + ": data_offsets " + brief(offsets) +
                            " begin after they end");
  }
  return Status::Ok();
}

Status parse_entry(const std::string& name, const Json& value, Entry* entry) {
  entry->name = name;
  const std::string who = tensor_label(name);
  if (!value.is_object()) {
    return Status::DataLoss(who + ": header entry is not a JSON object");
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(field)) {
      return Status::DataLoss(who + ": missing field '" + field + "'");
    }
  }
  const Json& dtype = value.at("dtype");
  if (!dtype.is_string()) {
    return Status::DataLoss(who + ": dtype " + brief(dtype) + " is not a string");
  }
  const std::string dtype_name = dtype.get<std::string>();
  entry->dtype = find_dtype([&](const DtypeInfo& d) { return dtype_name == d.name; });
  if (entry->dtype == nullptr) {
    return Status::DataLoss(who + ": unknown or unsupported dtype " + brief(dtype));
  }
  const Json& shape = value.at("shape");
  if (!shape.is_array()) {
    return Status::DataLoss(who + ": shape " + brief(shape) + " is not an array");
  }
  uint64_t nbytes = 0;
  FEDVAR_RETURN_IF_ERROR(parse_shape(shape, entry, &nbytes));
  FEDVAR_RETURN_IF_ERROR(parse_offsets(value.at("data_offsets"), entry));
  if (entry->end - entry->begin != nbytes) {
    return Status::DataLoss(who + ": shape " + brief(shape) + " of " +
                            entry->dtype->name + " needs " + std::to_string(nbytes) +
                            " bytes but data_offsets span " +
                            std::to_string(entry->end - entry->begin));
  }
  return Status::Ok();
}

Status parse_metadata(const Json& value, std::map<std::string, std::string>* out) {
  if (value.is_null()) return Status::Ok();  // the reference reads null as none
  if (!value.is_object()) {
    return Status::DataLoss("__metadata__ is not a JSON object");
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return Status::DataLoss("__metadata__ value for key '" + brief(key) +
                              "' is not a string");
    }
    (*out)[key] = item.get<std::string>();
  }
  return Status::Ok();
}

// The tensors must tile the data section exactly: in bounds, no overlap, no
// gap, nothing after the last one (the reference's rule).
Status check_layout(std::vector<Entry>* entries, uint64_t data_size) {
  for (const Entry& e : *entries) {
    if (e.end > data_size) {
      return Status::DataLoss(tensor_label(e.name) + ": data_offsets [" +
                              std::to_string(e.begin) + ", " + std::to_string(e.end) +
                              "] run past the end of the " + std::to_string(data_size) +
                              "-byte data section (truncated file?)");
    }
  }
  std::sort(entries->begin(), entries->end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : *entries) {
    if (e.begin < cursor) {
      return Status::DataLoss(tensor_label(e.name) + " overlaps " +
                              tensor_label(previous->name) + " in the data section");
    }
    if (e.begin > cursor) {
      return Status::DataLoss("data bytes [" + std::to_string(cursor) + ", " +
                              std::to_string(e.begin) + ") before " +
                              tensor_label(e.name) + " are not covered by any tensor");
    }
    cursor = e.end;
    previous = &e;
  }
  if (cursor != data_size) {
    return Status::DataLoss("data bytes [" + std::to_string(cursor) + ", " +
                            std::to_string(data_size) +
                            ") after the last tensor are not covered by any tensor");
  }
  return Status::Ok();
}

// Refuses JSON nested deeper than kMaxHeaderDepth, in one pass that skips
// strings as the parser does; the parser then only sees shallow values.
Status check_header_depth(const char* begin, const char* end) {
  int depth = 0;
  bool in_string = false;
  for (const char* p = begin; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (c == '\\' && p + 1 < end) ++p;  // skip the escaped character
      in_string = c != '"';
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxHeaderDepth) {
        return Status::DataLoss("header nests JSON deeper than " +
                                std::to_string(kMaxHeaderDepth) + " levels");
      }
    } else if ((c == ']' || c == '}') && --depth < 0) {
      break;  // unbalanced: the parser stops here at the latest
    }
  }
  return Status::Ok();
}

Result<Json> parse_header_json(const char* begin, const char* end) {
  FEDVAR_RETURN_IF_ERROR(check_header_depth(begin, end));
  Json header;
  try {
    header = Json::parse(begin, end);
  } catch (const Json::exception& e) {
    return Status::DataLoss("header is not valid JSON: " + cut(e.what(), 160));
  }
  if (!header.is_object()) return Status::DataLoss("header is not a JSON object");
  return header;
}

Result<uint64_t> read_header_length(const std::string& bytes) {
  if (bytes.size() < kLengthBytes) {
    return Status::DataLoss("file is " + std::to_string(bytes.size()) +
                            " bytes, shorter than the 8-byte header length (truncated)");
  }
  uint64_t n = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  if (n > kMaxHeaderBytes) {
    return Status::DataLoss("header length " + std::to_string(n) +
                            " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                            " bytes");
  }
  if (n > bytes.size() - kLengthBytes) {
    return Status::DataLoss("header length " + std::to_string(n) + " exceeds the " +
                            std::to_string(bytes.size() - kLengthBytes) +
                            " bytes after the length (truncated file?)");
  }
  if (n == 0 || bytes[kLengthBytes] != '{') {
    return Status::DataLoss("header does not start with '{'");
  }
  return n;
}

Result<torch::Tensor> make_tensor(const Entry& e, const char* data) {
  try {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    return t;
  } catch (const std::exception& ex) {
    return status_from_exception(tensor_label(e.name), ex);
  }
}

// A tensor ready to serialise: CPU, contiguous, with its format dtype.
struct Prepared {
  std::string name;
  const DtypeInfo* dtype;
  torch::Tensor tensor;
};

Result<std::vector<Prepared>> prepare(const TensorFile& file) {
  std::vector<Prepared> out;
  for (const auto& [name, tensor] : file.tensors) {
    const std::string who = tensor_label(name);
    if (name == kMetadataKey) return Status::InvalidArgument(who + ": reserved name");
    if (!tensor.defined()) return Status::InvalidArgument(who + " is undefined");
    const auto type = tensor.scalar_type();
    const DtypeInfo* dtype =
        find_dtype([type](const DtypeInfo& d) { return type == d.type; });
    if (dtype == nullptr || tensor.layout() != torch::kStrided) {
      return Status::InvalidArgument(who + ": unsupported dtype or layout " +
                                     std::string(c10::toString(tensor.scalar_type())));
    }
    try {
      torch::Tensor cpu =
          tensor.detach().to(torch::kCPU).resolve_conj().resolve_neg().contiguous();
      out.push_back({name, dtype, std::move(cpu)});
    } catch (const std::exception& e) {
      return status_from_exception(who + ": moving to CPU failed", e);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Prepared& a, const Prepared& b) {
    if (a.dtype->rank != b.dtype->rank) return a.dtype->rank > b.dtype->rank;
    return a.name < b.name;
  });
  return out;
}

std::string shape_json(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(t.size(i));
  }
  return s + "]";
}

Result<std::string> build_header(const std::vector<Prepared>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  try {
    if (!metadata.empty()) header += "\"__metadata__\":" + Json(metadata).dump();
    uint64_t offset = 0;
    for (const Prepared& p : tensors) {
      const uint64_t nbytes = static_cast<uint64_t>(p.tensor.numel()) * p.dtype->size;
      if (header.size() > 1) header += ',';
      header += Json(p.name).dump() + ":{\"dtype\":\"" + p.dtype->name +
                "\",\"shape\":" + shape_json(p.tensor) + ",\"data_offsets\":[" +
                std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
      offset += nbytes;
    }
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("name or metadata is not UTF-8: ") +
                                   e.what());
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

}  // namespace

Result<TensorFile> parse_safetensors(const std::string& bytes) {
  FEDVAR_ASSIGN_OR_RETURN(const uint64_t n, read_header_length(bytes));
  const char* header_begin = bytes.data() + kLengthBytes;
  FEDVAR_ASSIGN_OR_RETURN(const Json header,
                          parse_header_json(header_begin, header_begin + n));
  TensorFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      FEDVAR_RETURN_IF_ERROR(parse_metadata(value, &file.metadata));
      continue;
    }
    entries.emplace_back();
    FEDVAR_RETURN_IF_ERROR(parse_entry(key, value, &entries.back()));
  }
  const uint64_t data_size = bytes.size() - kLengthBytes - n;
  FEDVAR_RETURN_IF_ERROR(check_layout(&entries, data_size));
  const char* data = header_begin + n;
  for (const Entry& e : entries) {
    FEDVAR_ASSIGN_OR_RETURN(torch::Tensor t, make_tensor(e, data));
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

Result<TensorFile> read_safetensors(const std::string& path) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string bytes, read_regular_file(path));
  Result<TensorFile> file = parse_safetensors(bytes);
  if (!file.ok()) return file.status().with_context(path);
  return file;
}

Result<std::string> serialize_safetensors(const TensorFile& file) {
  FEDVAR_ASSIGN_OR_RETURN(const std::vector<Prepared> tensors, prepare(file));
  FEDVAR_ASSIGN_OR_RETURN(const std::string header, build_header(tensors, file.metadata));
  size_t total = kLengthBytes + header.size();
  for (const Prepared& p : tensors) total += p.tensor.nbytes();
  std::string out;
  out.reserve(total);
  const uint64_t n = header.size();
  for (size_t i = 0; i < kLengthBytes; ++i) {
    out += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  out += header;
  for (const Prepared& p : tensors) {
    out.append(static_cast<const char*>(p.tensor.data_ptr()), p.tensor.nbytes());
  }
  return out;
}

Status write_safetensors(const std::string& path, const TensorFile& file) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string bytes, serialize_safetensors(file));
  return write_file_atomic(path, bytes);
}

}  // namespace fedvar

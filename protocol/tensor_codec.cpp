#include "protocol/tensor_codec.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "protocol/fields.h"

namespace fedvar::protocol::detail {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensor data is little-endian on the wire; this host would need swaps");

constexpr size_t kMaxDims = 16;

struct Dtype {
  const char* name;  // safetensors' spelling
  torch::ScalarType type;
};

constexpr Dtype kDtypes[] = {
    {"BOOL", torch::kBool},   {"U8", torch::kUInt8},      {"I8", torch::kInt8},
    {"I16", torch::kInt16},   {"I32", torch::kInt32},     {"I64", torch::kInt64},
    {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F32", torch::kFloat32},
    {"F64", torch::kFloat64},
};

const Dtype* dtype_of(torch::ScalarType type) {
  for (const Dtype& d : kDtypes) {
    if (d.type == type) return &d;
  }
  return nullptr;
}

const Dtype* dtype_named(const std::string& name) {
  for (const Dtype& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// CPU contiguous copies of `tensors` (shared storage where already so), checked.
Result<std::vector<torch::Tensor>> prepare(const TensorMap& tensors) {
  std::vector<torch::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const std::string who = "tensor '" + name + "'";
    if (name.empty()) return Status::InvalidArgument("a tensor has an empty name");
    if (!tensor.defined()) return Status::InvalidArgument(who + " is undefined");
    if (dtype_of(tensor.scalar_type()) == nullptr) {
      return Status::InvalidArgument(who + " has unsupported dtype " +
                                     std::string(c10::toString(tensor.scalar_type())));
    }
    if (tensor.dim() > static_cast<int64_t>(kMaxDims) ||
        tensor.nbytes() > kMaxTensorBytes) {
      return Status::InvalidArgument(who + " is too large to send");
    }
    try {
      out.push_back(tensor.detach().to(torch::kCPU).contiguous());
    } catch (const c10::Error& e) {
      return Status::Internal(who + ": " + e.what_without_backtrace());
    }
  }
  return out;
}

void pack_str(Packer& packer, std::string_view s) {
  packer.pack_str(static_cast<uint32_t>(s.size()));
  packer.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// The dims of a shape array: at most kMaxDims non-negative integers.
Result<std::vector<int64_t>> read_shape(const msgpack::object& object,
                                        const std::string& who) {
  if (object.type != msgpack::type::ARRAY || object.via.array.size > kMaxDims) {
    return Status::InvalidArgument(who + ": shape is not an array of at most " +
                                   std::to_string(kMaxDims) + " dims");
  }
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < object.via.array.size; ++i) {
    FEDVAR_ASSIGN_OR_RETURN(const int64_t dim,
                            as_int64(object.via.array.ptr[i], who + ": shape entry"));
    if (dim < 0) return Status::InvalidArgument(who + ": shape has a negative dim");
    shape.push_back(dim);
  }
  return shape;
}

// The bytes "data" names: a bin, or with `frames` the index of an unused frame.
Result<std::string_view> data_bytes(const msgpack::object& data, const std::string& who,
                                    const std::vector<std::string_view>* frames,
                                    std::vector<bool>* used) {
  if (frames == nullptr) {
    if (data.type != msgpack::type::BIN) {
      return Status::InvalidArgument(who + ": data is not bin");
    }
    return std::string_view(data.via.bin.ptr, data.via.bin.size);
  }
  if (data.type != msgpack::type::POSITIVE_INTEGER || data.via.u64 == 0 ||
      data.via.u64 >= frames->size() || (*used)[data.via.u64]) {
    return Status::InvalidArgument(who + ": data is not the index of an unused frame");
  }
  (*used)[data.via.u64] = true;
  return (*frames)[data.via.u64];
}

// Ok iff `data` has exactly prod(shape) * elem_bytes bytes.
Status check_byte_count(const std::vector<int64_t>& shape, size_t elem_bytes,
                        std::string_view data, const std::string& who) {
  uint64_t count = elem_bytes;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count)) {
      return Status::InvalidArgument(who + ": shape overflows");
    }
  }
  if (count != data.size()) {
    return Status::InvalidArgument(who + ": shape needs " + std::to_string(count) +
                                   " bytes but data has " + std::to_string(data.size()));
  }
  return Status::Ok();
}

Result<std::pair<std::string, torch::Tensor>> unpack_tensor(
    const msgpack::object& object, const std::string& what,
    const std::vector<std::string_view>* frames, std::vector<bool>* used) {
  FEDVAR_ASSIGN_OR_RETURN(Fields fields, Fields::of(object, what));
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* name_obj, fields.get("name"));
  FEDVAR_ASSIGN_OR_RETURN(std::string name, as_string(*name_obj, what + ".name"));
  if (name.empty()) return Status::InvalidArgument(what + " has an empty name");
  const std::string who = what + " '" + name + "'";
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* dtype_obj, fields.get("dtype"));
  FEDVAR_ASSIGN_OR_RETURN(const std::string dtype_name,
                          as_string(*dtype_obj, who + ": dtype"));
  const Dtype* dtype = dtype_named(dtype_name);
  if (dtype == nullptr) {
    return Status::InvalidArgument(who + ": unknown dtype '" + dtype_name + "'");
  }
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* shape_obj, fields.get("shape"));
  FEDVAR_ASSIGN_OR_RETURN(const std::vector<int64_t> shape, read_shape(*shape_obj, who));
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* data_obj, fields.get("data"));
  FEDVAR_RETURN_IF_ERROR(fields.check_all_read());
  FEDVAR_ASSIGN_OR_RETURN(const std::string_view data,
                          data_bytes(*data_obj, who, frames, used));
  const size_t elem_bytes = c10::elementSize(dtype->type);
  FEDVAR_RETURN_IF_ERROR(check_byte_count(shape, elem_bytes, data, who));
  try {
    torch::Tensor tensor = torch::empty(shape, torch::TensorOptions(dtype->type));
    if (!data.empty()) std::memcpy(tensor.data_ptr(), data.data(), data.size());
    if (tensor.is_floating_point() && !torch::isfinite(tensor).all().item<bool>()) {
      return Status::InvalidArgument(who + " has non-finite values");
    }
    return std::make_pair(std::move(name), std::move(tensor));
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(who + ": " + e.what_without_backtrace());
  }
}

}  // namespace

Status pack_tensors(const TensorMap& tensors, Packer& packer,
                    std::vector<torch::Tensor>* out_of_band) {
  FEDVAR_ASSIGN_OR_RETURN(const std::vector<torch::Tensor> ready, prepare(tensors));
  packer.pack_array(static_cast<uint32_t>(ready.size()));
  size_t i = 0;
  for (const auto& entry : tensors) {
    const torch::Tensor& t = ready[i++];
    packer.pack_map(4);
    pack_str(packer, "name");
    pack_str(packer, entry.first);
    pack_str(packer, "dtype");
    pack_str(packer, dtype_of(t.scalar_type())->name);
    pack_str(packer, "shape");
    packer.pack_array(static_cast<uint32_t>(t.dim()));
    for (int64_t dim : t.sizes()) packer.pack_int64(dim);
    pack_str(packer, "data");
    if (out_of_band != nullptr) {
      out_of_band->push_back(t);
      packer.pack_uint64(out_of_band->size());
      continue;
    }
    const auto bytes = static_cast<uint32_t>(t.nbytes());
    packer.pack_bin(bytes);
    packer.pack_bin_body(static_cast<const char*>(t.data_ptr()), bytes);
  }
  return Status::Ok();
}

Result<TensorMap> unpack_tensors(const msgpack::object& object, const std::string& what,
                                 const std::vector<std::string_view>* frames,
                                 std::vector<bool>* used) {
  if (object.type != msgpack::type::ARRAY) {
    return Status::InvalidArgument(what + " is not an array");
  }
  if (object.via.array.size > kMaxTensors) {
    return Status::InvalidArgument(what + " has more than " +
                                   std::to_string(kMaxTensors) + " tensors");
  }
  TensorMap tensors;
  for (uint32_t i = 0; i < object.via.array.size; ++i) {
    FEDVAR_ASSIGN_OR_RETURN(auto entry, unpack_tensor(object.via.array.ptr[i],
                                                      what + " tensor", frames, used));
    const std::string name = entry.first;
    if (!tensors.emplace(std::move(entry.first), std::move(entry.second)).second) {
      return Status::InvalidArgument(what + " repeats tensor '" + name + "'");
    }
  }
  return tensors;
}

}  // namespace fedvar::protocol::detail

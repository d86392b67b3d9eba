#include "capi/c_tensors.h"

#include <torch/torch.h>

#include <set>
#include <vector>

namespace fedvar::capi {
namespace {

// Elements are bounded so that a bad shape cannot ask for an absurd copy.
constexpr int64_t kMaxElements = int64_t{1} << 34;
constexpr int32_t kMaxDims = 8;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

Result<std::vector<int64_t>> checked_shape(const fedvar_tensor_t& t, const std::string& name) {
  if (t.ndim < 0 || t.ndim > kMaxDims) {
    return Status::InvalidArgument("tensor '" + name + "': ndim must be 0.." +
                                   std::to_string(kMaxDims));
  }
  if (t.ndim > 0 && t.shape == nullptr) {
    return Status::InvalidArgument("tensor '" + name + "': shape is NULL");
  }
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && elements > kMaxElements / d)) {
      return Status::InvalidArgument("tensor '" + name + "': bad shape " + shape_text(shape));
    }
    elements *= d;
  }
  if (elements > 0 && t.data == nullptr) {
    return Status::InvalidArgument("tensor '" + name + "': data is NULL");
  }
  return shape;
}

}  // namespace

Result<torch::ScalarType> torch_dtype(int dtype) {
  switch (dtype) {
    case FEDVAR_F32: return torch::kFloat32;
    case FEDVAR_F64: return torch::kFloat64;
    case FEDVAR_F16: return torch::kFloat16;
    case FEDVAR_I64: return torch::kInt64;
    case FEDVAR_I32: return torch::kInt32;
    default: return Status::InvalidArgument("unknown dtype " + std::to_string(dtype));
  }
}

Result<fedvar_dtype> c_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return FEDVAR_F32;
    case torch::kFloat64: return FEDVAR_F64;
    case torch::kFloat16: return FEDVAR_F16;
    case torch::kInt64: return FEDVAR_I64;
    case torch::kInt32: return FEDVAR_I32;
    default:
      return Status::InvalidArgument(std::string("dtype ") + c10::toString(type) +
                                     " is not one the C interface carries");
  }
}

Result<StateDict> read_tensors(const fedvar_tensor_t* tensors, size_t count) {
  if (tensors == nullptr || count == 0) return Status::InvalidArgument("no tensors given");
  StateDict state;
  for (size_t i = 0; i < count; ++i) {
    const fedvar_tensor_t& t = tensors[i];
    if (t.name == nullptr || t.name[0] == '\0') {
      return Status::InvalidArgument("tensor #" + std::to_string(i) + " has no name");
    }
    const std::string name = t.name;
    if (state.count(name)) return Status::InvalidArgument("tensor '" + name + "' is repeated");
    FEDVAR_ASSIGN_OR_RETURN(auto type, torch_dtype(t.dtype));
    FEDVAR_ASSIGN_OR_RETURN(auto shape, checked_shape(t, name));
    torch::Tensor view = torch::from_blob(t.data, shape, torch::TensorOptions(type));
    // float32 and int64 stay views: loading them into the network is the copy.
    state[name] = view.to(at::isFloatingType(type) ? torch::kFloat32 : torch::kInt64);
  }
  for (const auto& [name, t] : StateDict(state)) {
    const std::string suffix = ".running_mean";
    if (name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string tracked =
        name.substr(0, name.size() - suffix.size()) + ".num_batches_tracked";
    if (!state.count(tracked)) state[tracked] = torch::zeros({}, torch::kInt64);
  }
  return state;
}

Status check_writable(const StateDict& state, const fedvar_tensor_t* out, size_t count) {
  if (out == nullptr) return Status::InvalidArgument("no output tensors given");
  std::set<std::string> seen;
  for (size_t i = 0; i < count; ++i) {
    const fedvar_tensor_t& t = out[i];
    if (t.name == nullptr) return Status::InvalidArgument("output tensor #" + std::to_string(i) + " has no name");
    const std::string name = t.name;
    auto it = state.find(name);
    if (it == state.end()) {
      return Status::InvalidArgument("output tensor '" + name + "' is not in the model");
    }
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("output tensor '" + name + "' is repeated");
    }
    FEDVAR_RETURN_IF_ERROR(torch_dtype(t.dtype).status());
    FEDVAR_ASSIGN_OR_RETURN(auto shape, checked_shape(t, name));
    if (it->second.sizes() != torch::IntArrayRef(shape)) {
      return Status::InvalidArgument("output tensor '" + name + "' has shape " +
                                     shape_text(shape) + ", the model's is " +
                                     shape_text(it->second.sizes().vec()));
    }
  }
  return Status::Ok();
}

void write_tensors(const StateDict& state, fedvar_tensor_t* out, size_t count) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < count; ++i) {
    const fedvar_tensor_t& t = out[i];
    const torch::Tensor& value = state.at(t.name);
    if (value.numel() == 0) continue;
    const auto type = torch_dtype(t.dtype).value();
    torch::from_blob(t.data, value.sizes(), torch::TensorOptions(type)).copy_(value);
  }
}

}  // namespace fedvar::capi

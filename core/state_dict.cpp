#include "core/state_dict.h"

#include <c10/util/StringUtil.h>

namespace fedvar {

Status check_same_layout(const StateDict& update, const StateDict& reference) {
  for (const auto& [name, ref] : reference) {
    const auto it = update.find(name);
    if (it == update.end()) {
      return Status::InvalidArgument("update is missing tensor '" + name + "'");
    }
    const torch::Tensor& t = it->second;
    if (!t.defined() || t.scalar_type() != ref.scalar_type()) {
      return Status::InvalidArgument(
          "tensor '" + name + "' has dtype " +
          (t.defined() ? std::string(c10::toString(t.scalar_type())) : "undefined") +
          ", expected " + c10::toString(ref.scalar_type()));
    }
    if (t.sizes() != ref.sizes()) {
      return Status::InvalidArgument("tensor '" + name + "' has shape " +
                                     c10::str(t.sizes()) + ", expected " +
                                     c10::str(ref.sizes()));
    }
  }
  for (const auto& entry : update) {
    if (reference.count(entry.first) == 0) {
      return Status::InvalidArgument("update has unexpected tensor '" + entry.first +
                                     "'");
    }
  }
  return Status::Ok();
}

bool is_buffer_name(const std::string& name) {
  for (const char* suffix : {"running_mean", "running_var", "num_batches_tracked"}) {
    const std::string s = suffix;
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      return true;
    }
  }
  return false;
}

Status check_batchnorm_statistics(const StateDict& state) {
  const std::string suffix = "running_var";
  for (const auto& [name, t] : state) {
    if (name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    if (t.defined() && t.numel() > 0 && t.lt(0).any().item<bool>()) {
      return Status::InvalidArgument("tensor '" + name +
                                     "' has negative values: not a variance");
    }
  }
  return Status::Ok();
}

}  // namespace fedvar

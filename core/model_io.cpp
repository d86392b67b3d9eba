#include "core/model_io.h"

#include <cstdint>

#include <nlohmann/json.hpp>

namespace fedvar {
namespace {

// Bounds on an architecture read from a file, so that a small file cannot
// make the loader build a huge network.
constexpr int64_t kMaxWidth = 1024;  // torchvision's ResNet18 has 64
constexpr int64_t kMaxInChannels = 1024;
constexpr int64_t kMaxClasses = 100000;
constexpr size_t kMaxNameChars = 64;  // of an untrusted tensor name in a message

// "[a,b,...]", the first 8 dimensions of an untrusted shape at most.
std::string shape_string(c10::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size() && i < 8; ++i) {
    s += (i ? "," : "") + std::to_string(sizes[i]);
  }
  return s + (sizes.size() > 8 ? ",...]" : "]");
}

std::string quoted(const std::string& name) {
  if (name.size() <= kMaxNameChars) return "'" + name + "'";
  return "'" + name.substr(0, kMaxNameChars) + "...'";
}

Result<torch::Tensor> find_tensor(const TensorFile& file, const std::string& name,
                                  int64_t dims) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) {
    return Status::InvalidArgument("tensor '" + name +
                                   "' is missing: not a torchvision ResNet18");
  }
  if (it->second.dim() != dims) {
    return Status::InvalidArgument("tensor '" + name + "' has shape " +
                                   shape_string(it->second.sizes()) + ", expected " +
                                   std::to_string(dims) + " dimensions");
  }
  return it->second;
}

Status check_bound(const char* what, int64_t value, int64_t max) {
  if (value >= 1 && value <= max) return Status::Ok();
  return Status::InvalidArgument("a ResNet18 with " + std::to_string(value) + " " + what +
                                 " is outside the supported 1.." + std::to_string(max));
}

Status check_bounds(const ResNetOptions& o) {
  FEDVAR_RETURN_IF_ERROR(check_bound("filters in conv1 (width)", o.width, kMaxWidth));
  FEDVAR_RETURN_IF_ERROR(check_bound("input channels", o.in_channels, kMaxInChannels));
  return check_bound("classes", o.num_classes, kMaxClasses);
}

std::string describe(const ResNetOptions& o) {
  return "a ResNet18 (" + std::string(stem_name(o.stem)) + " stem) of width " +
         std::to_string(o.width) + ", " + std::to_string(o.in_channels) +
         " input channel(s) and " + std::to_string(o.num_classes) + " classes";
}

// Floating point for weights and statistics; a number for the step count
// (an integer in PyTorch, a float after some numpy round trips, as Flower's).
Status check_dtype(const std::string& name, const torch::Tensor& t) {
  const std::string suffix = ".num_batches_tracked";
  const bool counter =
      name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  const auto type = t.scalar_type();
  const bool floating = at::isFloatingType(type);
  if (floating || (counter && at::isIntegralType(type, /*includeBool=*/false))) {
    return Status::Ok();
  }
  return Status::InvalidArgument("tensor '" + name + "' has dtype " +
                                 c10::toString(type) + ", expected " +
                                 (counter ? "a number" : "a floating-point type"));
}

// Named parameters and buffers, the way torchvision's state_dict() lists them.
std::vector<std::pair<std::string, torch::Tensor>> named_state(ResNet18& model) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& p : model->named_parameters()) state.emplace_back(p.key(), p.value());
  for (const auto& b : model->named_buffers()) state.emplace_back(b.key(), b.value());
  return state;
}

}  // namespace

Status check_resnet_file(const TensorFile& file, const ResNetOptions& options) {
  FEDVAR_RETURN_IF_ERROR(check_bounds(options));
  const auto shapes = resnet_state_shapes(options);
  for (const auto& [name, shape] : shapes) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end() || !it->second.defined()) {
      return Status::InvalidArgument("tensor '" + name + "' is missing: not " +
                                     describe(options));
    }
    if (it->second.sizes() != c10::IntArrayRef(shape)) {
      return Status::InvalidArgument("tensor '" + name + "' has shape " +
                                     shape_string(it->second.sizes()) + ", " +
                                     describe(options) + " has " + shape_string(shape));
    }
    FEDVAR_RETURN_IF_ERROR(check_dtype(name, it->second));
  }
  for (const auto& entry : file.tensors) {
    if (shapes.count(entry.first) == 0) {
      return Status::InvalidArgument("unexpected tensor " + quoted(entry.first) +
                                     " (not part of ResNet18)");
    }
  }
  return Status::Ok();
}

Result<ResNetOptions> infer_resnet_options(const TensorFile& file,
                                           const ArchOverrides& overrides) {
  FEDVAR_ASSIGN_OR_RETURN(auto conv1, find_tensor(file, "conv1.weight", 4));
  FEDVAR_ASSIGN_OR_RETURN(auto fc, find_tensor(file, "fc.weight", 2));
  ResNetOptions o;
  o.width = conv1.size(0);
  o.in_channels = conv1.size(1);
  const int64_t kernel = conv1.size(2);
  if (kernel == 3 || kernel == 7) {
    o.stem = kernel == 3 ? Stem::kCifar : Stem::kImagenet;
  } else if (overrides.stem) {
    o.stem = *overrides.stem;
  } else {
    return Status::InvalidArgument("conv1.weight has kernel " + std::to_string(kernel) +
                                   "x" + std::to_string(kernel) +
                                   ": neither the cifar (3) nor the imagenet (7) stem");
  }
  o.num_classes = fc.size(0);
  FEDVAR_RETURN_IF_ERROR(check_bounds(o));  // before any arithmetic on them
  if (fc.size(1) != 8 * o.width) {
    return Status::InvalidArgument("fc.weight has shape [" + std::to_string(fc.size(0)) +
                                   ", " + std::to_string(fc.size(1)) +
                                   "]; a ResNet18 whose conv1 has " +
                                   std::to_string(o.width) + " filters needs [classes, " +
                                   std::to_string(8 * o.width) + "] with classes >= 1");
  }
  FEDVAR_RETURN_IF_ERROR(check_resnet_file(file, o));
  if (overrides.in_channels) o.in_channels = *overrides.in_channels;
  if (overrides.num_classes) o.num_classes = *overrides.num_classes;
  if (overrides.width) o.width = *overrides.width;
  if (overrides.stem) o.stem = *overrides.stem;
  FEDVAR_RETURN_IF_ERROR(check_bounds(o));
  return o;
}

TensorFile resnet_state(ResNet18& model) {
  TensorFile file;
  for (auto& [name, tensor] : named_state(model)) {
    file.tensors[name] = tensor.detach().to(torch::kCPU).contiguous();
  }
  return file;
}

Status load_resnet_state(ResNet18& model, const TensorFile& file) {
  torch::NoGradGuard no_grad;
  auto state = named_state(model);
  for (auto& [name, target] : state) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      return Status::InvalidArgument("tensor '" + name + "' is missing");
    }
    if (it->second.sizes() != target.sizes()) {
      return Status::InvalidArgument(
          "tensor '" + name + "' has shape " + shape_string(it->second.sizes()) +
          ", the model expects " + shape_string(target.sizes()));
    }
  }
  if (file.tensors.size() != state.size()) {
    for (const auto& [name, tensor] : file.tensors) {
      bool known = false;
      for (const auto& s : state) known = known || s.first == name;
      if (!known) {
        return Status::InvalidArgument("unexpected tensor " + quoted(name) +
                                       " (not part of ResNet18)");
      }
    }
  }
  try {
    for (auto& [name, target] : state) {
      target.copy_(file.tensors.at(name).to(target.dtype()));
    }
  } catch (const std::exception& e) {
    return status_from_exception("loading the weights", e);
  }
  return Status::Ok();
}

Result<LoadedModel> load_resnet(const std::string& path, const ArchOverrides& overrides) {
  FEDVAR_ASSIGN_OR_RETURN(auto file, read_safetensors(path));
  auto options = infer_resnet_options(file, overrides);
  if (!options.ok()) return options.status().with_context(path);
  // With overrides the network differs from the one inferred: check again.
  FEDVAR_RETURN_IF_ERROR(check_resnet_file(file, options.value()).with_context(path));
  LoadedModel loaded;
  try {
    loaded.model = ResNet18(options.value());
  } catch (const std::exception& e) {
    return status_from_exception(path + ": building the network", e);
  }
  FEDVAR_RETURN_IF_ERROR(load_resnet_state(loaded.model, file).with_context(path));
  loaded.metadata = file.metadata;
  auto it = file.metadata.find("normalize");
  if (it != file.metadata.end()) {
    auto n = Normalization::parse(it->second);
    if (n.ok()) loaded.normalization = n.value();
  }
  return loaded;
}

Status save_resnet(const std::string& path, ResNet18& model,
                   const std::optional<Normalization>& normalization,
                   std::map<std::string, std::string> extra_metadata) {
  TensorFile file = resnet_state(model);
  file.metadata = std::move(extra_metadata);
  file.metadata["format"] = "pt";
  const auto& o = model->options();
  file.metadata["arch"] = nlohmann::json{
      {"name", "resnet18"},
      {"in_channels", o.in_channels},
      {"num_classes", o.num_classes},
      {"stem", stem_name(o.stem)},
      {"width", o.width}}.dump();
  if (normalization) file.metadata["normalize"] = normalization->to_string();
  return write_safetensors(path, file);
}

ResNet18 clone_model(ResNet18& model) {
  ResNet18 copy(model->options());
  (void)load_resnet_state(copy, resnet_state(model));  // same architecture
  copy->to(model->parameters().front().device());
  return copy;
}

}  // namespace fedvar

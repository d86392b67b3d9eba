#include "core/model_io.h"

#include <nlohmann/json.hpp>

namespace fedvar {
namespace {

std::string shape_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
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
                                   shape_string(it->second) + ", expected " +
                                   std::to_string(dims) + " dimensions");
  }
  return it->second;
}

// Named parameters and buffers, the way torchvision's state_dict() lists them.
std::vector<std::pair<std::string, torch::Tensor>> named_state(ResNet18& model) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& p : model->named_parameters()) state.emplace_back(p.key(), p.value());
  for (const auto& b : model->named_buffers()) state.emplace_back(b.key(), b.value());
  return state;
}

}  // namespace

Result<ResNetOptions> infer_resnet_options(const TensorFile& file,
                                           const ArchOverrides& overrides) {
  FEDVAR_ASSIGN_OR_RETURN(auto conv1, find_tensor(file, "conv1.weight", 4));
  FEDVAR_ASSIGN_OR_RETURN(auto fc, find_tensor(file, "fc.weight", 2));
  ResNetOptions o;
  o.width = conv1.size(0);
  o.in_channels = conv1.size(1);
  const int64_t kernel = conv1.size(2);
  if (kernel == 3) {
    o.stem = Stem::kCifar;
  } else if (kernel == 7) {
    o.stem = Stem::kImagenet;
  } else if (!overrides.stem) {
    return Status::InvalidArgument("conv1.weight has kernel " + std::to_string(kernel) +
                                   "x" + std::to_string(kernel) +
                                   ": neither the cifar (3) nor the imagenet (7) stem");
  }
  o.num_classes = fc.size(0);
  if (o.num_classes < 1 || o.width < 1 || fc.size(1) != 8 * o.width) {
    return Status::InvalidArgument(
        "fc.weight has shape [" + std::to_string(fc.size(0)) + ", " +
        std::to_string(fc.size(1)) + "]; a ResNet18 whose conv1 has " +
        std::to_string(o.width) + " filters needs [classes, " + std::to_string(8 * o.width) +
        "] with classes >= 1");
  }
  if (overrides.in_channels) o.in_channels = *overrides.in_channels;
  if (overrides.num_classes) o.num_classes = *overrides.num_classes;
  if (overrides.width) o.width = *overrides.width;
  if (overrides.stem) o.stem = *overrides.stem;
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
      return Status::InvalidArgument("tensor '" + name + "' has shape " +
                                     shape_string(it->second) + ", the model expects " +
                                     shape_string(target));
    }
  }
  if (file.tensors.size() != state.size()) {
    for (const auto& [name, tensor] : file.tensors) {
      bool known = false;
      for (const auto& s : state) known = known || s.first == name;
      if (!known) {
        return Status::InvalidArgument("unexpected tensor '" + name +
                                       "' (not part of ResNet18)");
      }
    }
  }
  for (auto& [name, target] : state) {
    target.copy_(file.tensors.at(name).to(target.dtype()));
  }
  return Status::Ok();
}

Result<LoadedModel> load_resnet(const std::string& path, const ArchOverrides& overrides) {
  FEDVAR_ASSIGN_OR_RETURN(auto file, read_safetensors(path));
  auto options = infer_resnet_options(file, overrides);
  if (!options.ok()) return options.status().with_context(path);
  LoadedModel loaded;
  loaded.model = ResNet18(options.value());
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

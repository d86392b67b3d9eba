// Loading and saving a ResNet18 as a safetensors state dict in torchvision's
// names, with its architecture inferred from tensor shapes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/normalization.h"
#include "core/resnet.h"
#include "core/safetensors.h"
#include "core/status.h"

namespace fedvar {

// Flags that override what infer_resnet_options reads from the shapes.
struct ArchOverrides {
  std::optional<int64_t> in_channels;
  std::optional<int64_t> num_classes;
  std::optional<int64_t> width;
  std::optional<Stem> stem;
};

// Reads in-channels, stem (kernel 3 = cifar, 7 = imagenet), width and classes
// from conv1.weight and fc.weight, checks the whole file against them
// (check_resnet_file), then applies `overrides`. Any problem: kInvalidArgument.
Result<ResNetOptions> infer_resnet_options(const TensorFile& file,
                                           const ArchOverrides& overrides = {});

// Ok when `options` are within bounds (width <= 1024, in-channels <= 1024,
// classes <= 100000) and `file` holds exactly that ResNet18's tensors, each
// shaped as it and floating (num_batches_tracked: integer); builds nothing.
Status check_resnet_file(const TensorFile& file, const ResNetOptions& options);

// The model's parameters and buffers by torchvision name, on CPU.
TensorFile resnet_state(ResNet18& model);

// Copies every parameter and buffer from `file` (strict: a missing tensor,
// a wrong shape or an unexpected extra tensor is an error naming it).
Status load_resnet_state(ResNet18& model, const TensorFile& file);

// A deep copy (new weights) on the model's device, unlike copying the
// ResNet18 holder, which shares them.
ResNet18 clone_model(ResNet18& model);

struct LoadedModel {
  ResNet18 model{nullptr};
  std::optional<Normalization> normalization;  // from the file's metadata
  std::map<std::string, std::string> metadata;
};

// Reads the regular file `path`, checks it (as infer_resnet_options), then
// builds the network and loads the weights (on CPU). Errors name `path`.
Result<LoadedModel> load_resnet(const std::string& path,
                                const ArchOverrides& overrides = {});

// Saves the state dict atomically, with metadata {"format": "pt"} (as
// PyTorch's writer), the architecture and, if given, the normalization.
Status save_resnet(const std::string& path, ResNet18& model,
                   const std::optional<Normalization>& normalization,
                   std::map<std::string, std::string> extra_metadata = {});

}  // namespace fedvar

// Loading and saving a ResNet18 as a safetensors state dict in torchvision's
// names, with its architecture inferred from tensor shapes.
#pragma once

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

// Reads in-channels, stem (kernel 3 = cifar, 7 = imagenet) and width from
// conv1.weight and classes from fc.weight. Missing/mis-shaped: kInvalidArgument.
Result<ResNetOptions> infer_resnet_options(const TensorFile& file,
                                           const ArchOverrides& overrides = {});

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

// Reads `path`, builds the architecture and loads the weights (on CPU).
Result<LoadedModel> load_resnet(const std::string& path,
                                const ArchOverrides& overrides = {});

// Saves the state dict atomically, with metadata {"format": "pt"} (as
// PyTorch's writer), the architecture and, if given, the normalization.
Status save_resnet(const std::string& path, ResNet18& model,
                   const std::optional<Normalization>& normalization,
                   std::map<std::string, std::string> extra_metadata = {});

}  // namespace fedvar

// ResNet18 (He et al. 2016) in the PyTorch C++ frontend style, with
// torchvision's parameter and buffer names (conv1.weight, bn1.running_mean,
// layer2.0.downsample.0.weight, fc.bias, ...num_batches_tracked) so that its
// state dict interchanges with torchvision.models.resnet18.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fedvar {

enum class Stem {
  kCifar,     // 3x3 stride-1 conv, no max-pool (small images)
  kImagenet,  // torchvision's 7x7 stride-2 conv + 3x3 max-pool
};

struct ResNetOptions {
  int64_t in_channels = 1;  // 1 for (Fashion-)MNIST, 3 for CIFAR
  int64_t num_classes = 10;
  Stem stem = Stem::kCifar;
  int64_t width = 64;  // channels of layer1; 64 is torchvision's
};

const char* stem_name(Stem stem);
// "imagenet" -> kImagenet; any other name (the flags check it) -> kCifar.
Stem stem_from_name(const std::string& name);

// The shape of every parameter and buffer, by torchvision name, that a
// ResNet18 of `options` has, computed without building it (for checking a
// file before allocating the network). num_batches_tracked is a scalar.
std::map<std::string, std::vector<int64_t>> resnet_state_shapes(
    const ResNetOptions& options);

// Called during forward() with each conv's index in forward order and the
// output of the BatchNorm that follows it (before ReLU and residual add).
using ConvObserver = std::function<void(size_t conv_index, const torch::Tensor&)>;

// One conv layer and the BatchNorm that normalises its output.
struct ConvBn {
  std::string name;  // torchvision name of the conv, e.g. "layer4.1.conv2"
  std::string bn_name;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x, const ConvObserver* observer,
                        size_t first_index);
  bool has_downsample() const { return !downsample_.is_empty(); }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet18Impl : public torch::nn::Module {
 public:
  explicit ResNet18Impl(const ResNetOptions& options = {});

  torch::Tensor forward(const torch::Tensor& x) { return forward(x, nullptr); }
  // Same, calling `observer` (may be null) for every conv + BN in order.
  torch::Tensor forward(const torch::Tensor& x, const ConvObserver* observer);
  // Outputs of layer1..layer4 (index 0..3) and the logits, in one pass.
  std::vector<torch::Tensor> forward_stages(const torch::Tensor& x);

  // Every conv with its BN in forward order (stem, then each block's conv1,
  // conv2, downsample). Handles share the model's weights.
  std::vector<ConvBn> conv_layers();
  // The convs of the residual path only (no downsample), in forward order.
  std::vector<ConvBn> main_path_convs();

  const ResNetOptions& options() const { return options_; }

 private:
  torch::nn::Sequential make_layer(int64_t planes, int64_t stride);
  torch::Tensor run_layer(torch::nn::Sequential& layer, torch::Tensor x,
                          const ConvObserver* observer, size_t& index);

  ResNetOptions options_;
  int64_t in_planes_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr},
      layer4_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace fedvar

#include "core/resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

namespace fedvar {
namespace {

namespace F = torch::nn::functional;

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, /*kernel_size=*/3)
                               .stride(stride)
                               .padding(1)
                               .bias(false));
}

void observe(const ConvObserver* observer, size_t index, const torch::Tensor& t) {
  if (observer != nullptr && *observer) (*observer)(index, t);
}

}  // namespace

const char* stem_name(Stem stem) { return stem == Stem::kCifar ? "cifar" : "imagenet"; }

Stem stem_from_name(const std::string& name) {
  return name == "imagenet" ? Stem::kImagenet : Stem::kCifar;
}

std::map<std::string, std::vector<int64_t>> resnet_state_shapes(
    const ResNetOptions& options) {
  std::map<std::string, std::vector<int64_t>> shapes;
  const auto add_bn = [&](const std::string& name, int64_t channels) {
    for (const char* field : {".weight", ".bias", ".running_mean", ".running_var"}) {
      shapes[name + field] = {channels};
    }
    shapes[name + ".num_batches_tracked"] = {};
  };
  const int64_t kernel = options.stem == Stem::kCifar ? 3 : 7;
  shapes["conv1.weight"] = {options.width, options.in_channels, kernel, kernel};
  add_bn("bn1", options.width);
  int64_t in_planes = options.width;
  for (int layer = 0; layer < 4; ++layer) {  // as make_layer builds them
    const int64_t planes = options.width << layer;
    for (int block = 0; block < 2; ++block) {
      const std::string prefix =
          "layer" + std::to_string(layer + 1) + "." + std::to_string(block) + ".";
      shapes[prefix + "conv1.weight"] = {planes, in_planes, 3, 3};
      add_bn(prefix + "bn1", planes);
      shapes[prefix + "conv2.weight"] = {planes, planes, 3, 3};
      add_bn(prefix + "bn2", planes);
      const bool downsample = block == 0 && (layer > 0 || in_planes != planes);
      if (downsample) {
        shapes[prefix + "downsample.0.weight"] = {planes, in_planes, 1, 1};
        add_bn(prefix + "downsample.1", planes);
      }
      in_planes = planes;
    }
  }
  shapes["fc.weight"] = {options.num_classes, 8 * options.width};
  shapes["fc.bias"] = {options.num_classes};
  return shapes;
}

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : conv1(conv3x3(in_planes, planes, stride)),
      conv2(conv3x3(planes, planes, 1)),
      bn1(planes),
      bn2(planes) {
  // Registration order is torchvision's, so state dicts list in the same order.
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  if (stride != 1 || in_planes != planes) {
    downsample_ = torch::nn::Sequential(
        torch::nn::Conv2d(
            torch::nn::Conv2dOptions(in_planes, planes, 1).stride(stride).bias(false)),
        torch::nn::BatchNorm2d(planes));
    register_module("downsample", downsample_);
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x,
                                      const ConvObserver* observer, size_t first_index) {
  auto out = bn1(conv1(x));
  observe(observer, first_index, out);
  out = bn2(conv2(F::relu(out)));
  observe(observer, first_index + 1, out);
  torch::Tensor identity = x;
  if (has_downsample()) {
    identity = downsample_->forward(x);
    observe(observer, first_index + 2, identity);
  }
  return F::relu(out + identity);
}

ResNet18Impl::ResNet18Impl(const ResNetOptions& options)
    : options_(options), in_planes_(options.width) {
  const bool cifar = options.stem == Stem::kCifar;
  conv1_ = torch::nn::Conv2d(
      torch::nn::Conv2dOptions(options.in_channels, options.width, cifar ? 3 : 7)
          .stride(cifar ? 1 : 2)
          .padding(cifar ? 1 : 3)
          .bias(false));
  bn1_ = torch::nn::BatchNorm2d(options.width);
  register_module("conv1", conv1_);
  register_module("bn1", bn1_);
  layer1_ = register_module("layer1", make_layer(options.width, 1));
  layer2_ = register_module("layer2", make_layer(options.width * 2, 2));
  layer3_ = register_module("layer3", make_layer(options.width * 4, 2));
  layer4_ = register_module("layer4", make_layer(options.width * 8, 2));
  fc_ = register_module("fc", torch::nn::Linear(options.width * 8, options.num_classes));

  // torchvision's initialisation.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
}

torch::nn::Sequential ResNet18Impl::make_layer(int64_t planes, int64_t stride) {
  torch::nn::Sequential layer;
  layer->push_back(BasicBlock(in_planes_, planes, stride));
  in_planes_ = planes;
  layer->push_back(BasicBlock(in_planes_, planes, 1));
  return layer;
}

torch::Tensor ResNet18Impl::run_layer(torch::nn::Sequential& layer, torch::Tensor x,
                                      const ConvObserver* observer, size_t& index) {
  for (const auto& child : layer->children()) {
    auto block = std::dynamic_pointer_cast<BasicBlockImpl>(child);
    x = block->forward(x, observer, index);
    index += block->has_downsample() ? 3 : 2;
  }
  return x;
}

torch::Tensor ResNet18Impl::forward(const torch::Tensor& x,
                                    const ConvObserver* observer) {
  auto out = bn1_(conv1_(x));
  observe(observer, 0, out);
  out = F::relu(out);
  if (options_.stem == Stem::kImagenet) {
    out = F::max_pool2d(out, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  }
  size_t index = 1;
  for (auto* layer : {&layer1_, &layer2_, &layer3_, &layer4_}) {
    out = run_layer(*layer, out, observer, index);
  }
  out = F::adaptive_avg_pool2d(out, F::AdaptiveAvgPool2dFuncOptions(1));
  return fc_(out.flatten(1));
}

std::vector<torch::Tensor> ResNet18Impl::forward_stages(const torch::Tensor& x) {
  auto out = F::relu(bn1_(conv1_(x)));
  if (options_.stem == Stem::kImagenet) {
    out = F::max_pool2d(out, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  }
  std::vector<torch::Tensor> stages;
  size_t index = 1;
  for (auto* layer : {&layer1_, &layer2_, &layer3_, &layer4_}) {
    out = run_layer(*layer, out, nullptr, index);
    stages.push_back(out);
  }
  out = F::adaptive_avg_pool2d(out, F::AdaptiveAvgPool2dFuncOptions(1));
  stages.push_back(fc_(out.flatten(1)));
  return stages;
}

std::vector<ConvBn> ResNet18Impl::conv_layers() {
  std::vector<ConvBn> convs{{"conv1", "bn1", conv1_, bn1_}};
  const char* names[] = {"layer1", "layer2", "layer3", "layer4"};
  torch::nn::Sequential* layers[] = {&layer1_, &layer2_, &layer3_, &layer4_};
  for (int l = 0; l < 4; ++l) {
    int b = 0;
    for (const auto& child : (*layers[l])->children()) {
      auto block = std::dynamic_pointer_cast<BasicBlockImpl>(child);
      const std::string prefix = std::string(names[l]) + "." + std::to_string(b++) + ".";
      convs.push_back({prefix + "conv1", prefix + "bn1", block->conv1, block->bn1});
      convs.push_back({prefix + "conv2", prefix + "bn2", block->conv2, block->bn2});
      if (block->has_downsample()) {
        auto conv =
            std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(block->downsample_->ptr(0));
        auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(
            block->downsample_->ptr(1));
        convs.push_back({prefix + "downsample.0", prefix + "downsample.1",
                         torch::nn::Conv2d(conv), torch::nn::BatchNorm2d(bn)});
      }
    }
  }
  return convs;
}

std::vector<ConvBn> ResNet18Impl::main_path_convs() {
  std::vector<ConvBn> out;
  for (auto& c : conv_layers()) {
    if (c.name.find("downsample") == std::string::npos) out.push_back(c);
  }
  return out;
}

}  // namespace fedvar

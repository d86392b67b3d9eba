#include "core/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model_io.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::TempDir;

const std::string kInterop =
    std::string(FEDVAR_SOURCE_DIR) + "/tests/python/resnet_interop.py";

TEST(ResNet18, HasTorchvisionNamesAndShapes) {
  ResNet18 model(ResNetOptions{3, 1000, Stem::kImagenet, 64});
  auto state = resnet_state(model).tensors;
  // torchvision.models.resnet18().state_dict() has 122 entries.
  EXPECT_EQ(state.size(), 122u);
  EXPECT_EQ(state.at("conv1.weight").sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_EQ(state.at("layer2.0.downsample.0.weight").sizes(),
            (std::vector<int64_t>{128, 64, 1, 1}));
  EXPECT_EQ(state.at("layer4.1.bn2.running_var").sizes(), (std::vector<int64_t>{512}));
  EXPECT_EQ(state.at("fc.weight").sizes(), (std::vector<int64_t>{1000, 512}));
  EXPECT_EQ(state.at("bn1.num_batches_tracked").dim(), 0);
  EXPECT_EQ(state.at("bn1.num_batches_tracked").scalar_type(), torch::kLong);
  EXPECT_EQ(state.count("layer1.0.downsample.0.weight"), 0u);
}

// The shapes computed without building a network are the built network's.
TEST(ResNet18, StateShapesMatchTheBuiltNetwork) {
  for (const ResNetOptions& o :
       {ResNetOptions{1, 10, Stem::kCifar, 8},
        ResNetOptions{3, 1000, Stem::kImagenet, 64},
        ResNetOptions{2, 1, Stem::kImagenet, 5}, ResNetOptions{4, 3, Stem::kCifar, 1}}) {
    SCOPED_TRACE(std::to_string(o.width) + " " + stem_name(o.stem));
    ResNet18 model(o);
    const auto state = resnet_state(model).tensors;
    const auto shapes = resnet_state_shapes(o);
    ASSERT_EQ(shapes.size(), state.size());
    for (const auto& [name, tensor] : state) {
      ASSERT_EQ(shapes.count(name), 1u) << name;
      EXPECT_EQ(shapes.at(name), tensor.sizes().vec()) << name;
    }
  }
}

TEST(ResNet18, ForwardShapesForBothStems) {
  torch::NoGradGuard no_grad;
  ResNet18 cifar(ResNetOptions{1, 10, Stem::kCifar, 8});
  cifar->eval();
  EXPECT_EQ(cifar->forward(torch::rand({2, 1, 28, 28})).sizes(),
            (std::vector<int64_t>{2, 10}));
  ResNet18 imagenet(ResNetOptions{3, 7, Stem::kImagenet, 8});
  imagenet->eval();
  EXPECT_EQ(imagenet->forward(torch::rand({2, 3, 64, 64})).sizes(),
            (std::vector<int64_t>{2, 7}));
}

TEST(ResNet18, ConvLayersInForwardOrderAndObserverSeesEach) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 8});
  auto convs = model->conv_layers();
  ASSERT_EQ(convs.size(), 20u);  // stem + 8 blocks x 2 + 3 downsamples
  EXPECT_EQ(convs[0].name, "conv1");
  EXPECT_EQ(convs[5].name, "layer2.0.conv1");
  EXPECT_EQ(convs[7].name, "layer2.0.downsample.0");
  EXPECT_EQ(convs[7].bn_name, "layer2.0.downsample.1");
  EXPECT_EQ(convs.back().name, "layer4.1.conv2");
  EXPECT_EQ(model->main_path_convs().size(), 17u);

  std::vector<int64_t> channels(convs.size(), -1);
  ConvObserver observer = [&](size_t i, const torch::Tensor& out) {
    channels.at(i) = out.size(1);
  };
  torch::NoGradGuard no_grad;
  model->eval();
  model->forward(torch::rand({2, 1, 28, 28}), &observer);
  for (size_t i = 0; i < convs.size(); ++i) {
    EXPECT_EQ(channels[i], convs[i].conv->options.out_channels()) << convs[i].name;
  }
  auto stages = model->forward_stages(torch::rand({2, 1, 28, 28}));
  ASSERT_EQ(stages.size(), 5u);
  EXPECT_EQ(stages[3].size(1), 64);
}

TEST(ModelIo, InfersArchitectureAndHonoursOverrides) {
  ResNet18 model(ResNetOptions{3, 100, Stem::kImagenet, 16});
  auto file = resnet_state(model);
  auto o = infer_resnet_options(file);
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->in_channels, 3);
  EXPECT_EQ(o->num_classes, 100);
  EXPECT_EQ(o->width, 16);
  EXPECT_EQ(o->stem, Stem::kImagenet);
  ArchOverrides overrides;
  overrides.num_classes = 5;
  EXPECT_EQ(infer_resnet_options(file, overrides)->num_classes, 5);
}

TEST(ModelIo, MissingOrMisshapedTensorIsNamed) {
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 8});
  auto file = resnet_state(model);
  auto missing = file;
  missing.tensors.erase("layer3.1.bn1.running_mean");
  auto st = load_resnet_state(model, missing);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("layer3.1.bn1.running_mean"), std::string::npos);

  auto misshaped = file;
  misshaped.tensors["layer1.0.conv2.weight"] = torch::zeros({8, 8, 5, 5});
  st = load_resnet_state(model, misshaped);
  EXPECT_NE(st.message().find("layer1.0.conv2.weight"), std::string::npos);

  auto extra = file;
  extra.tensors["head.weight"] = torch::zeros({1});
  st = load_resnet_state(model, extra);
  EXPECT_NE(st.message().find("head.weight"), std::string::npos);

  auto no_conv1 = file;
  no_conv1.tensors.erase("conv1.weight");
  EXPECT_NE(infer_resnet_options(no_conv1).status().message().find("conv1.weight"),
            std::string::npos);
}

TEST(ModelIo, CheckResnetFileAcceptsExactlyTheArchitecture) {
  const ResNetOptions o{3, 7, Stem::kImagenet, 4};
  ResNet18 model(o);
  const TensorFile file = resnet_state(model);
  EXPECT_TRUE(check_resnet_file(file, o).ok());
  ResNetOptions wider = o;
  wider.width = 8;
  const Status st = check_resnet_file(file, wider);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("a ResNet18 (imagenet stem) of width 8"), std::string::npos)
      << st.message();
  ResNetOptions huge = o;
  huge.num_classes = 100001;
  EXPECT_NE(check_resnet_file(file, huge).message().find("1..100000"), std::string::npos);
}

TEST(ModelIo, SaveLoadRoundTripKeepsLogitsAndNormalization) {
  TempDir dir;
  torch::manual_seed(3);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 8});
  model->eval();
  auto x = torch::rand({3, 1, 28, 28});
  auto expected = model->forward(x);
  Normalization n{{0.25}, {0.5}};
  ASSERT_TRUE(save_resnet(dir.file("m.safetensors"), model, n).ok());
  auto loaded = load_resnet(dir.file("m.safetensors"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  loaded->model->eval();
  EXPECT_TRUE(torch::allclose(loaded->model->forward(x), expected));
  ASSERT_TRUE(loaded->normalization.has_value());
  EXPECT_DOUBLE_EQ(loaded->normalization->mean[0], 0.25);
  EXPECT_EQ(loaded->metadata.at("format"), "pt");
}

TEST(TorchvisionInterop, TorchvisionFileGivesSameLogits) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "no python3-torch";
  TempDir dir;
  auto r = testing::run_command("/usr/bin/python3 " + kInterop + " export " + dir.path());
  ASSERT_EQ(r.exit_code, 0);
  auto loaded = load_resnet(dir.file("torchvision.safetensors"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->model->options().stem, Stem::kCifar);
  EXPECT_EQ(loaded->model->options().width, 64);
  auto io = read_safetensors(dir.file("io.safetensors"));
  ASSERT_TRUE(io.ok()) << io.status().message();
  torch::NoGradGuard no_grad;
  loaded->model->eval();
  auto logits = loaded->model->forward(io->tensors.at("input"));
  EXPECT_LT((logits - io->tensors.at("logits")).abs().max().item<float>(), 1e-4);
}

TEST(TorchvisionInterop, FedvarFileLoadsStrictInTorchvision) {
  if (!testing::python_torch_available()) GTEST_SKIP() << "no python3-torch";
  TempDir dir;
  torch::manual_seed(1);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 64});
  {
    // A few training steps give non-trivial BN buffers to carry across.
    model->train();
    for (int i = 0; i < 2; ++i) model->forward(torch::rand({4, 1, 28, 28}));
  }
  model->eval();
  auto x = torch::rand({4, 1, 28, 28});
  TensorFile io;
  {
    torch::NoGradGuard no_grad;
    io.tensors = {{"input", x}, {"logits", model->forward(x)}};
  }
  ASSERT_TRUE(save_resnet(dir.file("fedvar.safetensors"), model, std::nullopt).ok());
  ASSERT_TRUE(write_safetensors(dir.file("fedvar_io.safetensors"), io).ok());
  auto r = testing::run_command("/usr/bin/python3 " + kInterop + " check " + dir.path() +
                                " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace fedvar

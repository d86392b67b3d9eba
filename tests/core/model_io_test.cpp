// core/model_io on hostile model files: a small file cannot make the loader
// build a large network, every tensor is checked before anything is built,
// and every error is one line, in the library and through fedvar eval.
#include "core/model_io.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tests/core/peak_memory.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using test_data::peak_growth_mib;
using testing::kData;
using testing::kFedvar;
using testing::run_command;
using testing::TempDir;

// A file holding only a stem and a head: conv1.weight [width, in, 3, 3] and
// fc.weight [classes, 8 * width], as small as the declared network is large.
std::string write_stem_and_head(const TempDir& dir, const std::string& name,
                                int64_t width, int64_t in_channels, int64_t classes,
                                torch::Dtype dtype = torch::kFloat32) {
  TensorFile file;
  file.tensors["conv1.weight"] = torch::zeros({width, in_channels, 3, 3}, dtype);
  file.tensors["fc.weight"] = torch::zeros({classes, 8 * width}, dtype);
  const std::string path = dir.file(name);
  EXPECT_TRUE(write_safetensors(path, file).ok());
  return path;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A 90 KB file declaring width 256 (a 716 MB network) is refused by what it
// lacks, before the network is built: in milliseconds and megabytes.
TEST(ModelFile, SmallFileDeclaringAWideNetworkIsRefusedBeforeBuildingIt) {
  TempDir dir;
  const std::string path = write_stem_and_head(dir, "wide.safetensors", 256, 1, 10);
  ASSERT_LT(std::filesystem::file_size(path), 100'000u);
  Result<LoadedModel> loaded = Status::Internal("not run");
  const auto start = std::chrono::steady_clock::now();
  const auto growth = peak_growth_mib([&] { loaded = load_resnet(path); });
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(has(loaded.status().message(), path + ": tensor 'bn1.bias' is missing"))
      << loaded.status().message();
  EXPECT_LT(took.count(), 1.0);
  if (growth) {
    EXPECT_LT(*growth, 64) << "MiB allocated to refuse a 90 KB file";
  }
}

// Width, input channels and classes outside their bounds are refused, naming
// the bound, whatever else the file holds.
TEST(ModelFile, ArchitectureOutsideTheBoundsIsRefusedNamingTheBound) {
  TempDir dir;
  struct Case {
    std::string path;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {write_stem_and_head(dir, "w.safetensors", 2048, 1, 1),
       "2048 filters in conv1 (width) is outside the supported 1..1024"},
      {write_stem_and_head(dir, "c.safetensors", 1, 1, 200000, torch::kUInt8),
       "200000 classes is outside the supported 1..100000"},
      {write_stem_and_head(dir, "i0.safetensors", 8, 0, 10),
       "0 input channels is outside the supported 1..1024"},
      {write_stem_and_head(dir, "i.safetensors", 1, 5000, 10),
       "5000 input channels is outside the supported 1..1024"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    Result<LoadedModel> loaded = load_resnet(c.path);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(has(loaded.status().message(), c.path + ": "))
        << loaded.status().message();
    EXPECT_TRUE(has(loaded.status().message(), c.expected)) << loaded.status().message();
    EXPECT_FALSE(has(loaded.status().message(), "\n"));
  }
}

// Each tensor's shape and dtype is checked against the architecture; a long
// unexpected name is quoted in part.
TEST(ModelFile, EveryTensorIsCheckedAgainstTheArchitecture) {
  TempDir dir;
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  const TensorFile good = resnet_state(model);
  struct Case {
    std::string name;
    std::function<void(TensorFile&)> damage;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"shape",
       [](TensorFile& f) { f.tensors["layer4.1.conv2.weight"] = torch::zeros({32}); },
       "tensor 'layer4.1.conv2.weight' has shape [32], a ResNet18 (cifar stem) of"},
      {"weights as bytes",
       [](TensorFile& f) {
         f.tensors["layer2.0.bn1.running_var"] = torch::ones({8}, torch::kUInt8);
       },
       "tensor 'layer2.0.bn1.running_var' has dtype Byte, expected a floating-point"},
      {"counter as bool",
       [](TensorFile& f) { f.tensors["bn1.num_batches_tracked"] = torch::tensor(true); },
       "tensor 'bn1.num_batches_tracked' has dtype Bool, expected a number"},
      {"many dims",
       [](TensorFile& f) {
         f.tensors["conv1.weight"] = torch::zeros(std::vector<int64_t>(30, 1));
       },
       "tensor 'conv1.weight' has shape [1,1,1,1,1,1,1,1,...], expected 4 dimensions"},
      {"long name",
       [](TensorFile& f) { f.tensors[std::string(10000, 'n')] = torch::zeros({1}); },
       "unexpected tensor 'nnnn"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TensorFile file = good;
    c.damage(file);
    const std::string path = dir.file(c.name + ".safetensors");
    ASSERT_TRUE(write_safetensors(path, file).ok());
    Result<LoadedModel> loaded = load_resnet(path);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(has(loaded.status().message(), c.expected)) << loaded.status().message();
    EXPECT_LT(loaded.status().message().size(), 300u);
  }
  ASSERT_TRUE(write_safetensors(dir.file("good.safetensors"), good).ok());
  EXPECT_TRUE(load_resnet(dir.file("good.safetensors")).ok());
}

// What follows "error:" on fedvar's stderr, which must be its last line.
std::string error_line(const std::string& output) {
  const size_t at = output.find("error:");
  return at == std::string::npos ? "" : output.substr(at);
}

// fedvar eval on a file that libtorch would refuse, on a device and on a
// directory: exit code 2 and a one-line error, no backtrace, no endless read.
TEST(ModelFile, EvalGivesOneLineErrorsForHostileModelPaths) {
  TempDir dir;
  const std::string zero_inputs = write_stem_and_head(dir, "i0.safetensors", 8, 0, 10);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {zero_inputs, "0 input channels"},
      {"/dev/zero", "/dev/zero is a character device, not a regular file"},
      {dir.path(), dir.path() + " is a directory, not a regular file"},
  };
  for (const auto& [model, expected] : cases) {
    SCOPED_TRACE(model);
    // Bounded, so that a reader that never stops fails here instead of the host.
    auto r = run_command("ulimit -v 8000000; timeout 60 " + kFedvar + " eval --model " +
                         model + " --data " + kData + " --device cpu 2>&1 >/dev/null");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    const std::string error = error_line(r.output);
    EXPECT_TRUE(has(error, expected)) << r.output;
    EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
}  // namespace fedvar

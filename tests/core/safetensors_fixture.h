// What the safetensors tests share: raw file images, tensor comparisons, the
// PyTorch interop script and a fixture with a temporary directory.
#pragma once

#include "core/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>

namespace fedvar::testing {

namespace fs = std::filesystem;

inline const char kInteropScript[] =
    FEDVAR_SOURCE_DIR "/tests/core/safetensors_interop.py";
inline const char kPython[] = "/usr/bin/python3";

inline std::string le64(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A file image with no checks and no padding: the raw material of bad files.
inline std::string raw_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

inline std::string f32_bytes(std::initializer_list<float> values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

// The tensors tests/core/safetensors_interop.py's expected() builds.
inline TensorFile interop_tensors() {
  using torch::arange;
  const auto f32 = torch::kFloat32;
  TensorFile f;
  f.tensors["f64"] = arange(6, torch::kFloat64).reshape({2, 3}) * 0.25 - 0.5;
  f.tensors["f32"] = arange(24, f32).reshape({2, 3, 4}) / 8 - 1;
  f.tensors["f16"] = (arange(12, f32) / 4 - 1).to(torch::kFloat16).reshape({3, 4});
  f.tensors["bf16"] = (arange(10, f32) * 0.5 - 2).to(torch::kBFloat16).reshape({2, 5});
  f.tensors["i64"] = arange(-3, 3, torch::kInt64) * 1000000007;
  f.tensors["i32"] = arange(-4, 4, torch::kInt32).reshape({2, 4}) * 65536;
  f.tensors["i16"] = arange(-5, 5, torch::kInt16) * 300;
  f.tensors["i8"] = arange(-6, 6, torch::kInt8) * 10;
  f.tensors["u8"] = arange(256, torch::kUInt8).reshape({16, 16});
  f.tensors["mask"] = arange(7) % 2 == 0;
  f.tensors["scalar"] = torch::tensor(3.5f);
  f.tensors["empty"] = torch::zeros({0, 3});
  f.metadata = {{"format", "pt"}, {"source", "interop"}};
  return f;
}

// Same dtype, shape and bytes (so NaN payloads and -0.0 count too).
inline void expect_same(const torch::Tensor& got, const torch::Tensor& want,
                        const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.scalar_type(), want.scalar_type());
  ASSERT_EQ(got.sizes(), want.sizes());
  const torch::Tensor w = want.contiguous();
  ASSERT_EQ(got.nbytes(), w.nbytes());
  if (w.nbytes() > 0) {  // memcmp's pointers must not be null, even for 0 bytes
    EXPECT_EQ(std::memcmp(got.data_ptr(), w.data_ptr(), w.nbytes()), 0);
  }
}

inline void expect_same_file(const TensorFile& got, const TensorFile& want) {
  EXPECT_EQ(got.metadata, want.metadata);
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (const auto& [name, tensor] : want.tensors) {
    ASSERT_EQ(got.tensors.count(name), 1u) << name;
    expect_same(got.tensors.at(name), tensor, name);
  }
}

// Runs `command`, returning its exit status and its stdout+stderr in `output`.
inline int run(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fedvar_safetensors_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_))
      names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

}  // namespace fedvar::testing

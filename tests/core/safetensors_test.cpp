// Tests for core/safetensors: round trips, the reference writer's exact bytes,
// atomic writes and PyTorch interop (corrupt files: safetensors_corrupt_test.cpp).
#include "core/safetensors.h"

#include <cstdint>

#include "tests/core/safetensors_fixture.h"

namespace fedvar {
namespace {

using namespace fedvar::testing;  // NOLINT: the shared helpers

TEST_F(SafetensorsTest, RoundTripsEveryDtypeScalarEmptyAndMetadata) {
  torch::manual_seed(7);
  TensorFile file = interop_tensors();
  const double inf = std::numeric_limits<double>::infinity();
  file.tensors["randn"] = torch::randn({4, 5});
  file.tensors["specials"] = torch::tensor({inf, -inf, std::nan(""), -0.0, 5e-324});
  file.tensors["i64_limits"] = torch::tensor(
      {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
  file.metadata["empty value"] = "";
  file.metadata["quote\"and\nnewline"] = "caf\xc3\xa9";
  ASSERT_TRUE(write_safetensors(path("m.safetensors"), file).ok());
  Result<TensorFile> loaded = read_safetensors(path("m.safetensors"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  expect_same_file(*loaded, file);
  EXPECT_EQ(loaded->tensors.at("scalar").dim(), 0);
  EXPECT_EQ(loaded->tensors.at("empty").numel(), 0);
  for (const auto& [name, t] : loaded->tensors) {
    EXPECT_TRUE(t.device().is_cpu()) << name;
    // Owns exactly its bytes: a copy, not a view into the file's buffer.
    EXPECT_EQ(t.storage().nbytes(), t.nbytes()) << name;
  }
}

TEST(Safetensors, MatchesReferenceWriterBytes) {
  // Expected images from the reference implementation's own tests.
  TensorFile one;
  one.tensors["attn.0"] = torch::arange(6, torch::kFloat32).reshape({1, 2, 3});
  const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],)"
                             R"("data_offsets":[0,24]}})";
  Result<std::string> bytes = serialize_safetensors(one);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, raw_file(header, f32_bytes({0, 1, 2, 3, 4, 5})));

  TensorFile padded;  // a shorter name: 7 spaces of padding
  padded.tensors["attn0"] = torch::arange(6, torch::kFloat32).reshape({1, 1, 2, 3});
  const std::string padded_header = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],)"
                                    R"("data_offsets":[0,24]}}       )";
  EXPECT_EQ(serialize_safetensors(padded).value(),
            raw_file(padded_header, f32_bytes({0, 1, 2, 3, 4, 5})));

  EXPECT_EQ(serialize_safetensors(TensorFile{}).value(), raw_file("{}      "));
  TensorFile meta_only;
  meta_only.metadata["framework"] = "pt";
  EXPECT_EQ(serialize_safetensors(meta_only).value(),
            raw_file(R"({"__metadata__":{"framework":"pt"}}     )"));
}

TEST(Safetensors, OrdersDataByDtypeThenName) {
  Result<std::string> bytes = serialize_safetensors(interop_tensors());
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->compare(8, 16, "{\"__metadata__\":"), 0);
  EXPECT_NE(bytes->find(R"("i64":{"dtype":"I64","shape":[6],"data_offsets":[0,48]})"),
            std::string::npos);
  size_t last = 0;
  for (const char* name : {"i64", "f64", "empty", "f32", "scalar", "i32", "bf16", "f16",
                           "i16", "i8", "u8", "mask"}) {
    const size_t at = bytes->find("\"" + std::string(name) + "\":{");
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, last) << name << " is out of the reference writer's order";
    last = at;
  }
}

TEST(Safetensors, SerializesViewsAsTheirValuesOnly) {
  TensorFile file;
  file.tensors["transposed"] = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();
  file.tensors["expanded"] = torch::tensor({1.0f, 2.0f}).expand({3, 2});
  file.tensors["sliced"] = torch::arange(10, torch::kInt64).slice(0, 3, 7);
  file.tensors["grad"] = torch::ones({2}, torch::requires_grad());
  Result<std::string> bytes = serialize_safetensors(file);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  uint64_t header = 0;
  std::memcpy(&header, bytes->data(), 8);
  EXPECT_EQ(bytes->size(), 8 + header + 12 * 4 + 6 * 4 + 4 * 8 + 2 * 4);
  Result<TensorFile> loaded = parse_safetensors(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  expect_same_file(*loaded, file);
}

TEST(Safetensors, RejectsTensorsItCannotWrite) {
  const std::vector<std::pair<TensorFile, std::string>> cases = {
      {{{{"__metadata__", torch::zeros({1})}}, {}}, "reserved name"},
      {{{{"t", torch::Tensor()}}, {}}, "tensor 't' is undefined"},
      {{{{"c", torch::zeros({2}, torch::kComplexFloat)}}, {}}, "unsupported dtype"},
      {{{{"bad\xff", torch::zeros({1})}}, {}}, "not UTF-8"},
  };
  for (const auto& [file, expected] : cases) {
    Result<std::string> bytes = serialize_safetensors(file);
    ASSERT_FALSE(bytes.ok()) << expected;
    EXPECT_EQ(bytes.status().code(), Code::kInvalidArgument) << expected;
    EXPECT_NE(bytes.status().message().find(expected), std::string::npos)
        << bytes.status().message();
  }
}

TEST_F(SafetensorsTest, WriteFileAtomicReplacesAndLeavesNoTempFile) {
  ASSERT_TRUE(write_file_atomic(path("out.json"), "first").ok());
  ASSERT_TRUE(write_file_atomic(path("out.json"), "second").ok());
  EXPECT_EQ(slurp(path("out.json")), "second");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.json"});

  const Status missing = write_file_atomic(path("no/such/dir/out.json"), "x");
  EXPECT_EQ(missing.code(), Code::kNotFound) << missing.message();
  // Renaming onto a directory fails after the temp file exists: it must go.
  fs::create_directory(path("taken"));
  const Status onto_dir = write_file_atomic(path("taken"), "x");
  EXPECT_FALSE(onto_dir.ok());
  EXPECT_NE(onto_dir.message().find("renaming"), std::string::npos) << onto_dir.message();
  EXPECT_EQ(listing(), (std::vector<std::string>{"out.json", "taken"}));
  // A tensor that cannot be written leaves no file at all.
  TensorFile bad{{{"t", torch::Tensor()}}, {}};
  EXPECT_FALSE(write_safetensors(path("bad.safetensors"), bad).ok());
  EXPECT_FALSE(fs::exists(path("bad.safetensors")));
}

bool python_has_torch() {
  static const bool has_torch = [] {
    std::string ignored;
    return run(std::string(kPython) + " -c 'import torch'", &ignored) == 0;
  }();
  return has_torch;
}

TEST_F(SafetensorsTest, ReadsWhatPyTorchWrote) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  std::string output;
  const std::string file = path("py.safetensors");
  ASSERT_EQ(run(std::string(kPython) + " " + kInteropScript + " write " + file, &output),
            0)
      << output;
  Result<TensorFile> loaded = read_safetensors(file);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  expect_same_file(*loaded, interop_tensors());
  // Byte for byte what the reference layout gives.
  EXPECT_EQ(serialize_safetensors(interop_tensors()).value(), slurp(file));
}

TEST_F(SafetensorsTest, PyTorchReadsWhatWeWrote) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const std::string file = path("cpp.safetensors");
  ASSERT_TRUE(write_safetensors(file, interop_tensors()).ok());
  std::string output;
  EXPECT_EQ(run(std::string(kPython) + " " + kInteropScript + " check " + file, &output),
            0)
      << output;
  // The check is able to fail: a changed value is caught.
  TensorFile changed = interop_tensors();
  changed.tensors["bf16"] = changed.tensors["bf16"] + 1;
  ASSERT_TRUE(write_safetensors(file, changed).ok());
  output.clear();
  EXPECT_NE(run(std::string(kPython) + " " + kInteropScript + " check " + file, &output),
            0);
  EXPECT_NE(output.find("bf16"), std::string::npos) << output;
}

}  // namespace
}  // namespace fedvar

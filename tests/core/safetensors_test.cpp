// Tests for core/safetensors: round trips, the reference writer's exact bytes,
// one message per kind of corrupt file, atomic writes and PyTorch interop.
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

namespace fedvar {
namespace {

namespace fs = std::filesystem;

const char kInteropScript[] = FEDVAR_SOURCE_DIR "/tests/core/safetensors_interop.py";
const char kPython[] = "/usr/bin/python3";

std::string le64(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A file image with no checks and no padding: the raw material of bad files.
std::string raw_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

// The tensors tests/core/safetensors_interop.py's expected() builds.
TensorFile interop_tensors() {
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
void expect_same(const torch::Tensor& got, const torch::Tensor& want,
                 const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.scalar_type(), want.scalar_type());
  ASSERT_EQ(got.sizes(), want.sizes());
  const torch::Tensor w = want.contiguous();
  ASSERT_EQ(got.nbytes(), w.nbytes());
  EXPECT_EQ(std::memcmp(got.data_ptr(), w.data_ptr(), w.nbytes()), 0);
}

void expect_same_file(const TensorFile& got, const TensorFile& want) {
  EXPECT_EQ(got.metadata, want.metadata);
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (const auto& [name, tensor] : want.tensors) {
    ASSERT_EQ(got.tensors.count(name), 1u) << name;
    expect_same(got.tensors.at(name), tensor, name);
  }
}

// Runs `command`, returning its exit status and its stdout+stderr in `output`.
int run(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const std::string& path) {
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

std::string entry(const std::string& name, const std::string& body) {
  return "\"" + name + "\":{" + body + "}";
}

TEST_F(SafetensorsTest, RejectsEachKindOfCorruptFileWithItsOwnMessage) {
  const std::string f32x2 = R"("dtype":"F32","shape":[2],)";
  const std::string a = entry("a", f32x2 + R"("data_offsets":[0,8])");
  const std::string d8(8, '\0');
  struct Case {
    std::string bytes;
    std::string expected;  // a substring of the message
  };
  const std::vector<Case> cases = {
      {std::string("\x02\0\0", 3), "shorter than the 8-byte header length"},
      {le64(100'000'001) + "{}", "exceeds the limit of 100000000 bytes"},
      {le64(64) + "{}", "exceeds the 2 bytes after the length"},
      {raw_file(" {}"), "does not start with '{'"},
      {raw_file(R"({"a":{"dtype":)"), "header is not valid JSON"},
      {raw_file("{\"\xff\":1}"), "ill-formed UTF-8"},
      {raw_file(R"({"a":5})"), "tensor 'a': header entry is not a JSON object"},
      {raw_file("{" + entry("a", R"("dtype":"F32","shape":[2])") + "}", d8),
       "tensor 'a': missing field 'data_offsets'"},
      {raw_file("{" + entry("a", R"("dtype":"F32","data_offsets":[0,8])") + "}", d8),
       "tensor 'a': missing field 'shape'"},
      {raw_file(
           "{" + entry("a", R"("dtype":"X9","shape":[2],"data_offsets":[0,8])") + "}",
           d8),
       "tensor 'a': unknown or unsupported dtype \"X9\""},
      {raw_file("{" + entry("a", R"("dtype":4,"shape":[2],"data_offsets":[0,8])") + "}",
                d8),
       "tensor 'a': dtype 4 is not a string"},
      {raw_file(
           "{" + entry("a", R"("dtype":"F32","shape":"2","data_offsets":[0,8])") + "}",
           d8),
       "tensor 'a': shape \"2\" is not an array"},
      {raw_file(
           "{" + entry("a", R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])") + "}",
           d8),
       "tensor 'a': shape [-2] has an entry that is not a non-negative integer"},
      {raw_file("{" +
                    entry("a", R"("dtype":"U8","shape":[4294967296,4294967296],)"
                               R"("data_offsets":[0,8])") +
                    "}",
                d8),
       "tensor 'a': shape [4294967296,4294967296] overflows"},
      {raw_file("{" + entry("a", f32x2 + R"("data_offsets":[8])") + "}", d8),
       "tensor 'a': data_offsets [8] is not a pair of non-negative integers"},
      {raw_file("{" + entry("a", f32x2 + R"("data_offsets":[8,0])") + "}", d8),
       "tensor 'a': data_offsets [8,0] begin after they end"},
      {raw_file(
           "{" + entry("a", R"("dtype":"F32","shape":[3],"data_offsets":[0,8])") + "}",
           d8),
       "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets span 8"},
      {raw_file("{" + a + "}", "1234"),
       "tensor 'a': data_offsets [0, 8] run past the end of the 4-byte data section"},
      {raw_file("{" + a + "," + entry("b", f32x2 + R"("data_offsets":[4,12])") + "}",
                d8 + "1234"),
       "tensor 'b' overlaps tensor 'a'"},
      {raw_file("{" + a + "," + entry("b", f32x2 + R"("data_offsets":[12,20])") + "}",
                d8 + d8 + "1234"),
       "data bytes [8, 12) before tensor 'b' are not covered by any tensor"},
      {raw_file("{" + a + "}", d8 + "1"),
       "data bytes [8, 9) after the last tensor are not covered by any tensor"},
      {raw_file(R"({"__metadata__":{"k":1},)" + a + "}", d8),
       "__metadata__ value for key 'k' is not a string"},
      {raw_file(R"({"__metadata__":["k"],)" + a + "}", d8),
       "__metadata__ is not a JSON object"},
  };
  std::set<std::string> messages;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].expected);
    Result<TensorFile> parsed = parse_safetensors(cases[i].bytes);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Code::kDataLoss);
    EXPECT_NE(parsed.status().message().find(cases[i].expected), std::string::npos)
        << parsed.status().message();
    messages.insert(parsed.status().message());
    // Through the file API the message also names the file.
    ASSERT_TRUE(write_file_atomic(path("bad"), cases[i].bytes).ok());
    Result<TensorFile> read = read_safetensors(path("bad"));
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().message(), path("bad") + ": " + parsed.status().message());
  }
  EXPECT_EQ(messages.size(), cases.size()) << "two kinds of damage share a message";
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  Result<TensorFile> missing = read_safetensors(path("absent.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.safetensors"), std::string::npos);
  EXPECT_FALSE(read_safetensors(dir_.string()).ok());  // a directory
}

TEST(Safetensors, TruncationsAndByteFlipsNeverCrash) {
  const std::string valid = serialize_safetensors(interop_tensors()).value();
  for (size_t n = 0; n < valid.size(); ++n) {
    Result<TensorFile> parsed = parse_safetensors(valid.substr(0, n));
    ASSERT_FALSE(parsed.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(parsed.status().code(), Code::kDataLoss);
  }
  EXPECT_FALSE(parse_safetensors(valid + "x").ok());
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int i = 0; i < 600; ++i) {
    std::string bytes = valid;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    Result<TensorFile> parsed = parse_safetensors(bytes);
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), Code::kDataLoss) << parsed.status().message();
      continue;
    }
    ++accepted;  // then the tensors must tile the data exactly
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    size_t total = 0;
    for (const auto& [name, t] : parsed->tensors) total += t.nbytes();
    EXPECT_EQ(total, bytes.size() - 8 - header);
  }
  EXPECT_GT(accepted, 0);  // flips inside the data section stay valid
  // Deep nesting must not exhaust the stack, parsing or destroying.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(
      parse_safetensors(raw_file("{\"__metadata__\":" + deep + "}")).status().code(),
      Code::kDataLoss);
  EXPECT_FALSE(parse_safetensors(raw_file("{\"a\":" + std::string(200000, '['))).ok());
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

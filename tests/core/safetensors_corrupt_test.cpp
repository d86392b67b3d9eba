// core/safetensors on bad files: one message per kind of corruption, a
// missing file, and truncations and byte flips that must never crash.
#include "core/safetensors.h"

#include <cstdint>

#include "tests/core/safetensors_fixture.h"

namespace fedvar {
namespace {

using namespace fedvar::testing;  // NOLINT: the shared helpers

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

// A value nested 100,000 deep in any field, or in the metadata, is refused
// before the JSON parser sees it: nothing recurses per level.
TEST(Safetensors, DeeplyNestedHeaderValuesAreRefusedBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string d8(8, '\0');
  const std::vector<std::string> headers = {
      "{" + entry("a", R"("dtype":)" + deep + R"(,"shape":[2],"data_offsets":[0,8])") +
          "}",
      "{" + entry("a", R"("dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,8])") +
          "}",
      "{" + entry("a", R"("dtype":"F32","shape":[2],"data_offsets":)" + deep) + "}",
      R"({"__metadata__":{"k":)" + deep + "}," +
          entry("a", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "}",
      "{\"a\":" + std::string(100000, '{'),
  };
  for (size_t i = 0; i < headers.size(); ++i) {
    SCOPED_TRACE("header " + std::to_string(i));
    Result<TensorFile> parsed = parse_safetensors(raw_file(headers[i], d8));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Code::kDataLoss);
    EXPECT_NE(parsed.status().message().find("header nests JSON deeper than 8 levels"),
              std::string::npos)
        << parsed.status().message();
  }
}

// Brackets, braces and escaped quotes inside strings are not nesting.
TEST(Safetensors, BracketsInsideStringsAreNotNesting) {
  TensorFile file;
  file.tensors["[[[[[[[[[[{{{{{{{{{{"] = torch::ones({2});
  file.metadata["k"] = std::string(50, '[') + "\"\\\"" + std::string(50, '{');
  const std::string bytes = serialize_safetensors(file).value();
  Result<TensorFile> parsed = parse_safetensors(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  expect_same_file(*parsed, file);
}

// Messages quote a short prefix of a long untrusted value or name, not all of it.
TEST(Safetensors, MessagesQuoteOnlyAPrefixOfLongValues) {
  const std::string long_text(1 << 20, 'x');
  std::string many_dims = "[";
  for (int i = 0; i < 100000; ++i) many_dims += i ? ",-1" : "-1";
  many_dims += "]";
  const std::vector<std::string> headers = {
      "{" +
          entry("a",
                R"("dtype":")" + long_text + R"(","shape":[2],"data_offsets":[0,8])") +
          "}",
      "{" +
          entry("a",
                R"("dtype":"F32","shape":)" + many_dims + R"(,"data_offsets":[0,8])") +
          "}",
      "{" + entry(long_text, R"("dtype":"F32","shape":[3],"data_offsets":[0,8])") + "}",
      R"({"__metadata__":{")" + long_text + R"(":1}})",
      "{\"a\":\"" + long_text + "\x01\"}",  // a control character: invalid JSON
  };
  for (size_t i = 0; i < headers.size(); ++i) {
    SCOPED_TRACE("header " + std::to_string(i));
    Result<TensorFile> parsed =
        parse_safetensors(raw_file(headers[i], std::string(8, '\0')));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Code::kDataLoss);
    EXPECT_LT(parsed.status().message().size(), 400u) << parsed.status().message();
  }
}

}  // namespace
}  // namespace fedvar

// Test helpers: a temporary directory and writers of small IDX / CIFAR files
// (raw or gzip-compressed) for the data-set tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace fedvar::test_data {

// Passes when `text` contains `part`; prints the text otherwise.
inline ::testing::AssertionResult has_substr(const std::string& text,
                                             const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << part << "\"";
}

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        ("fedvar_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// An IDX image: 00 00 <type> <dims>, big-endian dims, then `data`.
inline std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data,
                             unsigned char type = 0x08) {
  std::string out = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((d >> shift) & 0xff));
    }
  }
  return out + data;
}

// `count` bytes 0, 1, 2, ... (mod 256).
inline std::string ramp(size_t count) {
  std::string out(count, '\0');
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<char>(i % 256);
  return out;
}

inline void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

inline std::string read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

// One CIFAR record: the label byte(s), then 3072 pixels (i + seed) % 256.
inline std::string cifar_record(const std::vector<unsigned char>& labels, int seed) {
  std::string out(labels.begin(), labels.end());
  for (int i = 0; i < 3072; ++i) out.push_back(static_cast<char>((i + seed) % 256));
  return out;
}

// Writes an IDX split: `n` images of 4x4 (ramp pixels) and labels i % 10.
inline void write_idx_split(const TempDir& dir, const std::string& prefix, uint32_t n,
                            bool gzip) {
  std::string labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<char>(i % 10));
  const std::string images = idx_bytes({n, 4, 4}, ramp(n * 16));
  const std::string suffix = gzip ? ".gz" : "";
  auto write = gzip ? write_gzip : write_raw;
  write(dir.file(prefix + "-images-idx3-ubyte" + suffix), images);
  write(dir.file(prefix + "-labels-idx1-ubyte" + suffix), idx_bytes({n}, labels));
}

}  // namespace fedvar::test_data

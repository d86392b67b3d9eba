// Reading files (whole, or regular files only, in pieces) and atomic writes,
// with errno mapped to a Status code (ENOENT -> kNotFound, EACCES/EROFS ->
// kFailedPrecondition, ENOSPC -> kUnavailable, else kInternal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "core/status.h"

namespace fedvar {

// Reads all of `path`, whatever it is (a key may come from a pipe); more
// than `max_bytes` is kInvalidArgument once that much has been read, so
// /dev/zero or an endless pipe cannot grow a reader's memory without end.
inline constexpr uint64_t kReadFileLimit = uint64_t{1} << 30;  // 1 GiB
Result<std::string> read_file(const std::string& path,
                              uint64_t max_bytes = kReadFileLimit);

// A regular file open for reading, closed when destroyed. Untrusted inputs
// (models, data sets) go through here: a device, FIFO or directory never
// reaches read(2), so none can stall a reader or feed it without end.
class InputFile {
 public:
  // Opens `path` if it is a regular file; a directory, FIFO, socket or device
  // is kInvalidArgument naming what it is; a missing file is kNotFound.
  static Result<InputFile> open(const std::string& path);

  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  // Size in bytes when the file was opened.
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Reads up to `n` bytes into `out`: fewer only at the end of the file.
  Result<size_t> read(char* out, size_t n);

 private:
  InputFile(int fd, uint64_t size, std::string path);
  void close();

  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// Reads all of the regular file `path`; one larger than `max_bytes` is
// kInvalidArgument before any of it is read.
Result<std::string> read_regular_file(
    const std::string& path, uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

// Writes `contents` to `path` atomically: a temp file "<path>.tmp.<pid>" in the
// same directory, fsync, rename; the temp file is removed on failure, so a
// reader sees the old file or the whole new one. Every output fedvar writes
// goes through here.
Status write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace fedvar

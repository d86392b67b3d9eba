// core/file_io: InputFile and read_regular_file take regular files only, and
// read_regular_file refuses a file over its limit before reading it;
// read_file takes any file and stops at its limit.
#include "core/file_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <utility>

#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::TempDir;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(InputFile, ReadsARegularFileInPieces) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("a"), "hello world").ok());
  Result<InputFile> file = InputFile::open(dir.file("a"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->size(), 11u);
  char buffer[8];
  EXPECT_EQ(file->read(buffer, 5).value(), 5u);
  EXPECT_EQ(std::string(buffer, 5), "hello");
  EXPECT_EQ(file->read(buffer, 8).value(), 6u);  // fewer: the end of the file
  EXPECT_EQ(std::string(buffer, 6), " world");
  EXPECT_EQ(file->read(buffer, 8).value(), 0u);
  InputFile moved = std::move(file).value();
  EXPECT_EQ(moved.path(), dir.file("a"));
}

// A FIFO is refused without blocking in open(2) for a writer, a device
// without being read, a directory by name; a missing file is kNotFound.
TEST(InputFile, RefusesWhatIsNotARegularFile) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  const std::pair<std::string, std::string> cases[] = {
      {dir.file("fifo"), "is a FIFO, not a regular file"},
      {"/dev/zero", "is a character device, not a regular file"},
      {dir.path(), "is a directory, not a regular file"},
  };
  for (const auto& [path, expected] : cases) {
    Result<InputFile> file = InputFile::open(path);
    ASSERT_FALSE(file.ok()) << path;
    EXPECT_EQ(file.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(file.status().message(), path + " " + expected);
    Result<std::string> whole = read_regular_file(path);
    EXPECT_EQ(whole.status().message(), file.status().message());
  }
  Result<InputFile> missing = InputFile::open(dir.file("missing"));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_TRUE(has(missing.status().message(), dir.file("missing")));
}

TEST(ReadRegularFile, ReadsWholeFilesUpToTheLimit) {
  TempDir dir;
  const std::string text(1000, 'x');
  ASSERT_TRUE(write_file_atomic(dir.file("a"), text).ok());
  ASSERT_TRUE(write_file_atomic(dir.file("empty"), "").ok());
  EXPECT_EQ(read_regular_file(dir.file("a")).value(), text);
  EXPECT_EQ(read_regular_file(dir.file("a"), 1000).value(), text);
  EXPECT_EQ(read_regular_file(dir.file("empty")).value(), "");
  Result<std::string> over = read_regular_file(dir.file("a"), 999);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(has(over.status().message(), "1000 bytes, over the limit of 999"));
}

// read_file takes what read_regular_file refuses (a key from a pipe) but
// stops at its limit: /dev/zero is an error, not an endless allocation.
TEST(ReadFile, ReadsAnyFileUpToTheLimit) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("a"), std::string(1000, 'k')).ok());
  EXPECT_EQ(read_file(dir.file("a"), 1000).value(), std::string(1000, 'k'));
  auto over = read_file(dir.file("a"), 999);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(has(over.status().message(), "more than the limit of 999 bytes"));
  auto endless = read_file("/dev/zero", 1 << 20);
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(read_file("/dev/null").value(), "");
  EXPECT_EQ(read_file(dir.file("missing")).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace fedvar

#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace fedvar {
namespace {

// Maps an errno to the code that says what to do about it.
Status errno_status(const std::string& what, int err) {
  std::string message = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(std::move(message));
  if (err == EACCES || err == EPERM || err == EROFS || err == EISDIR) {
    return Status::FailedPrecondition(std::move(message));
  }
  if (err == ENOSPC || err == EDQUOT) return Status::Unavailable(std::move(message));
  return Status::Internal(std::move(message));
}

// What a file that is not a regular one is, for the error message.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

Status not_regular(const std::string& path, mode_t mode) {
  return Status::InvalidArgument(path + " is " + file_kind(mode) +
                                 ", not a regular file");
}

Status write_all(int fd, const std::string& contents, const std::string& path) {
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("writing " + path, errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> read_file(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("opening " + path, errno);
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return errno_status("reading " + path, err);
    }
    if (n == 0) break;
    if (bytes.size() + static_cast<uint64_t>(n) > max_bytes) {
      ::close(fd);
      return Status::InvalidArgument(path + " holds more than the limit of " +
                                     std::to_string(max_bytes) + " bytes");
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

InputFile::InputFile(int fd, uint64_t size, std::string path)
    : fd_(fd), size_(size), path_(std::move(path)) {}

InputFile::InputFile(InputFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      path_(std::move(other.path_)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
  }
  return *this;
}

InputFile::~InputFile() { close(); }

void InputFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<InputFile> InputFile::open(const std::string& path) {
  // stat first, so that opening a FIFO cannot block or a device act; then
  // fstat what was opened, in case the path changed in between.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("opening " + path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno_status("opening " + path, errno);
  InputFile file(fd, 0, path);
  if (::fstat(fd, &st) != 0) return errno_status("opening " + path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  file.size_ = static_cast<uint64_t>(st.st_size);
  return Result<InputFile>(std::move(file));
}

Result<size_t> InputFile::read(char* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::read(fd_, out + done, n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno_status("reading " + path_, errno);
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

Result<std::string> read_regular_file(const std::string& path, uint64_t max_bytes) {
  FEDVAR_ASSIGN_OR_RETURN(InputFile file, InputFile::open(path));
  if (file.size() > max_bytes) {
    return Status::InvalidArgument(path + " is " + std::to_string(file.size()) +
                                   " bytes, over the limit of " +
                                   std::to_string(max_bytes));
  }
  std::string bytes;
  try {
    // One byte more than fstat said shows a file that grew meanwhile.
    bytes.resize(static_cast<size_t>(file.size()) + 1);
  } catch (const std::exception& e) {
    return status_from_exception("reading " + path, e);
  }
  FEDVAR_ASSIGN_OR_RETURN(const size_t n, file.read(bytes.data(), bytes.size()));
  if (n != file.size()) {
    return Status::DataLoss(path + " changed size while being read");
  }
  bytes.resize(n);
  return bytes;
}

Status write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return errno_status("creating " + tmp, errno);
  Status status = write_all(fd, contents, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = errno_status("syncing " + tmp, errno);
  if (::close(fd) != 0 && status.ok()) status = errno_status("closing " + tmp, errno);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = errno_status("renaming " + tmp + " to " + path, errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  // Make the rename itself durable; best effort (some file systems refuse).
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

}  // namespace fedvar

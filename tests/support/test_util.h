// Small helpers shared by the tests: a temporary directory that cleans up
// after itself, and running a command to capture its output and exit code.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fedvar::testing {

// The fedvar binary under test and the real Fashion-MNIST (CMake defines both).
inline const std::string kFedvar = FEDVAR_BINARY;
inline const std::string kData = FEDVAR_FASHION_MNIST;

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "fedvar-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout (stderr too when the command redirects it)
};

// Runs `command` with /bin/sh, capturing stdout.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Whether Debian's python3 with torch and torchvision is usable here.
inline bool python_torch_available() {
  return run_command("/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null")
             .exit_code == 0;
}

}  // namespace fedvar::testing

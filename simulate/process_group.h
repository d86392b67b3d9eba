// The child processes `fedvar simulate` starts (one server, N clients): real
// processes via fork + exec, each killed with its parent (PR_SET_PDEATHSIG)
// and all of them killed together on Ctrl-C or on error.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar::simulate {

class ProcessGroup {
 public:
  ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;
  ~ProcessGroup() { kill_all(); }

  // Starts `argv` (argv[0] is the executable's path). Its stdout goes to
  // `stdout_path`, its stderr to `stderr_path` ("" = this process's stderr).
  // It inherits this process's environment with `env` ("NAME=VALUE" each)
  // added, replacing variables of the same names.
  Result<pid_t> spawn(const std::vector<std::string>& argv,
                      const std::string& stdout_path, const std::string& stderr_path,
                      const std::vector<std::string>& env = {});

  // Waits for `pid` to exit, up to `timeout_s` (< 0 = no limit); its exit
  // code (128 + signal when killed). kUnavailable on timeout or when `stop`
  // becomes true.
  Result<int> wait(pid_t pid, double timeout_s, const std::atomic<bool>& stop);

  // Whether `pid` is still running (reaps it if it has exited).
  bool running(pid_t pid);

  // SIGTERM to every child still running, SIGKILL to those left after 3 s.
  void kill_all();

 private:
  std::vector<pid_t> children_;
};

// This executable's path (/proc/self/exe), to start fedvar subcommands.
std::string self_executable();

}  // namespace fedvar::simulate

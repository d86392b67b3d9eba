#include "simulate/process_group.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

namespace fedvar::simulate {
namespace {

using Clock = std::chrono::steady_clock;

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(char* const* argv, char* const* envp, const char* out,
                             const char* err, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(127);  // the parent died before prctl
  const int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || dup2(out_fd, STDOUT_FILENO) < 0) _exit(127);
  if (err != nullptr) {
    const int err_fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err_fd < 0 || dup2(err_fd, STDERR_FILENO) < 0) _exit(127);
  }
  execve(argv[0], argv, envp);
  _exit(127);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string self_executable() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "fedvar";
}

Result<pid_t> ProcessGroup::spawn(const std::vector<std::string>& argv,
                                  const std::string& stdout_path,
                                  const std::string& stderr_path,
                                  const std::vector<std::string>& env) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& v) {
      return v.size() > name.size() && v.compare(0, name.size(), name) == 0 &&
             v[name.size()] == '=';
    });
    if (!replaced) envp.push_back(*e);
  }
  for (const std::string& v : env) envp.push_back(const_cast<char*>(v.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::Unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    exec_child(args.data(), envp.data(), stdout_path.c_str(),
               stderr_path.empty() ? nullptr : stderr_path.c_str(), parent);
  }
  children_.push_back(pid);
  return pid;
}

Result<int> ProcessGroup::wait(pid_t pid, double timeout_s,
                               const std::atomic<bool>& stop) {
  const auto start = Clock::now();
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      children_.erase(std::remove(children_.begin(), children_.end(), pid),
                      children_.end());
      return exit_code_of(status);
    }
    if (done < 0)
      return Status::Internal(std::string("waitpid: ") + std::strerror(errno));
    if (stop) return Status::Unavailable("stopped");
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (timeout_s >= 0 && waited > timeout_s) {
      return Status::Unavailable("process " + std::to_string(pid) + " still running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool ProcessGroup::running(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) return true;
  children_.erase(std::remove(children_.begin(), children_.end(), pid), children_.end());
  return false;
}

void ProcessGroup::kill_all() {
  for (pid_t pid : children_) kill(pid, SIGTERM);
  const auto start = Clock::now();
  while (!children_.empty()) {
    std::vector<pid_t> left;
    for (pid_t pid : children_) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == 0) left.push_back(pid);
    }
    children_ = left;
    if (children_.empty()) break;
    if (std::chrono::duration<double>(Clock::now() - start).count() > 3.0) {
      for (pid_t pid : children_) kill(pid, SIGKILL);
      for (pid_t pid : children_) waitpid(pid, nullptr, 0);
      children_.clear();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace fedvar::simulate

// `fedvar serve` and `fedvar client` as real processes on loopback, for the
// tests of what the server withstands: spawned without a shell (so that the
// test knows the server's pid and can read its memory in /proc), each killed
// when its handle goes, so that a server that hangs cannot outlive its test.
// A federation here is small: a width-4 ResNet18, 64 clean and 64 test
// images, one libtorch thread per process.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "protocol/auth.h"
#include "tests/support/test_util.h"

extern char** environ;

namespace fedvar::testing {

inline const std::string kServeKey = "serve-fixture-key";

// The key client `id` holds, derived from the federation's.
inline std::string client_key_of(const std::string& id) {
  return protocol::derive_client_key(kServeKey, id).value();
}

// One child process; SIGKILLed by the destructor unless it has exited.
class Process {
 public:
  // Runs argv (argv[0] a path) with `env` ("NAME=value") added to this
  // process's environment, stdout and stderr appended to the files named.
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
          const std::string& out, const std::string& err) {
    std::vector<std::string> vars(env);
    for (char** e = environ; *e != nullptr; ++e) vars.emplace_back(*e);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    for (const auto& v : vars) envp.push_back(const_cast<char*>(v.c_str()));
    args.push_back(nullptr);
    envp.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, out.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&files, 2, err.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&pid_, args[0], &files, nullptr, args.data(), envp.data()) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&files);
  }
  ~Process() {
    if (pid_ > 0 && !code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // The exit code (128 + signal when killed) if it ends within `seconds`.
  std::optional<int> wait_for(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    while (!code_ && pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (std::chrono::steady_clock::now() > deadline) {
        break;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return code_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> code_;
};

// `fedvar serve` with the small federation's flags and `extra`; its endpoint
// goes to DIR/endpoint, its metrics to DIR/metrics.jsonl, its checkpoint to
// DIR/global.safetensors, its log to DIR/serve.log.
inline std::unique_ptr<Process> start_server(const TempDir& dir,
                                             const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {kFedvar,           "serve",
                                   "--data",          kData,
                                   "--endpoint",      "tcp://127.0.0.1:*",
                                   "--endpoint-file", dir.file("endpoint"),
                                   "--clean-range",   "-64:",
                                   "--test-range",    "0:64",
                                   "--width",         "4",
                                   "--batch-size",    "32",
                                   "--threads",       "1",
                                   "--join-timeout",  "60",
                                   "--round-timeout", "60",
                                   "--metrics",       dir.file("metrics.jsonl"),
                                   "--checkpoint",    dir.file("global.safetensors")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Process>(argv,
                                   std::vector<std::string>{"FEDVAR_KEY=" + kServeKey},
                                   dir.file("serve.json"), dir.file("serve.log"));
}

// The server's endpoint once it listens; "" when it does not within `seconds`.
inline std::string await_endpoint(const TempDir& dir, double seconds = 60) {
  for (int i = 0; i < seconds * 10; ++i) {
    auto text = read_file(dir.file("endpoint"));
    if (text.ok() && !text.value().empty()) {
      return text.value().substr(0, text.value().find('\n'));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// Honest client `index` of `clients` (id client-INDEX) on the first 64
// training images, with its own key; its log is DIR/cINDEX.log.
inline std::unique_ptr<Process> start_client(const TempDir& dir,
                                             const std::string& endpoint, int index,
                                             int clients) {
  const std::string id = "client-" + std::to_string(index);
  const std::string name = "c" + std::to_string(index);
  return std::make_unique<Process>(
      std::vector<std::string>{kFedvar, "client", "--endpoint", endpoint, "--data", kData,
                               "--pool", "0:64", "--clients", std::to_string(clients),
                               "--index", std::to_string(index), "--id", id, "--threads",
                               "1", "--idle-timeout", "60"},
      std::vector<std::string>{"FEDVAR_CLIENT_KEY=" + client_key_of(id)},
      dir.file(name + ".json"), dir.file(name + ".log"));
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// A field of /proc/PID/status in KiB ("VmHWM": the peak resident set), or -1.
inline int64_t proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Whether FILE contains `text` within `seconds`.
inline bool await_text(const std::string& file, const std::string& text, double seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    auto content = read_file(file);
    if (content.ok() && content.value().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace fedvar::testing

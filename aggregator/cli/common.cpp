#include "aggregator/cli/common.h"

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "core/file_io.h"
#include "core/log.h"

namespace fedvar::cli {

int exit_code(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kDataLoss:
      return 2;
    default:
      return 1;
  }
}

int fail(const Status& status) {
  std::cerr << "error: " << status.message() << std::endl;
  return exit_code(status);
}

Result<Dataset> load_split_range(const std::string& dir, const std::string& split,
                                 const std::string& range) {
  FEDVAR_ASSIGN_OR_RETURN(auto data, load_dataset(dir, split));
  if (range.empty()) return data;
  FEDVAR_ASSIGN_OR_RETURN(auto r, parse_range(range, data.size()));
  return data.slice(r.begin, r.end);
}

Result<std::string> load_key(const std::string& key_file, KeyRole role) {
  const bool client = role == KeyRole::kClient;
  const char* env_var = client ? "FEDVAR_CLIENT_KEY" : "FEDVAR_KEY";
  std::string key;
  if (!key_file.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(key, read_file(key_file));
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  } else if (const char* env = std::getenv(env_var)) {
    key = env;
  }
  if (key.empty()) {
    return Status::InvalidArgument(
        std::string("no HMAC key: pass --key-file FILE or set ") + env_var +
        (client ? " (this client's key: fedvar client-key --id ID, run where the "
                  "federation key is)"
                : " (the federation key; clients get keys derived from it)"));
  }
  return key;
}

namespace {
void (*g_on_signal)() = nullptr;
extern "C" void handle_stop_signal(int) {
  if (g_on_signal) g_on_signal();
}
}  // namespace

void on_stop_signal(void (*on_signal)()) {
  g_on_signal = on_signal;
  struct sigaction action {};
  action.sa_handler = handle_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

std::function<int()> json_action(std::function<Status(nlohmann::json&)> run) {
  return [run = std::move(run)] {
    init_logging();
    nlohmann::json result;
    try {
      Status st = run(result);
      if (!st.ok()) return fail(st);
    } catch (const std::exception& e) {
      return fail(Status::Internal(e.what()));
    }
    print_json(result);
    return 0;
  };
}

}  // namespace fedvar::cli

#include "cli/common.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "core/device.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/stop.h"

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

void add_normalize_flag(CLI::App& cmd, std::string& normalize) {
  cmd.add_option("--normalize", normalize,
                 "The model's input normalization: MEAN,STD per channel, or 'estimate' "
                 "(from the data); default: the model file's, else none (x/255)");
}

Result<Normalization> resolve_normalization(const std::string& flag,
                                            const std::optional<Normalization>& from_file,
                                            const Dataset& data) {
  Normalization n;
  if (flag == "estimate") {
    n = Normalization::estimate(data);
    spdlog::info("normalization estimated from the data: {}", n.to_string());
  } else if (!flag.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(n, Normalization::parse(flag));
  } else if (from_file) {
    n = *from_file;
  } else {
    n = Normalization::none(data.channels());
    spdlog::info(
        "no normalization in the model file and no --normalize: using none (x/255, as "
        "for a model trained on ToTensor() output)");
  }
  FEDVAR_RETURN_IF_ERROR(n.check_channels(data.channels()));
  return n;
}

ArchOverrides ArchFlags::overrides() const {
  ArchOverrides o;
  if (!stem.empty()) o.stem = stem_from_name(stem);
  if (in_channels > 0) o.in_channels = in_channels;
  return o;
}

void add_arch_flags(CLI::App& cmd, ArchFlags& flags) {
  cmd.add_option("--stem", flags.stem, "Override the inferred stem (cifar|imagenet)")
      ->check(CLI::IsMember({"cifar", "imagenet"}));
  cmd.add_option("--in-channels", flags.in_channels, "Override the inferred in-channels");
}

void add_compute_flags(CLI::App& cmd, ComputeFlags& flags) {
  cmd.add_option("--device", flags.device, "auto, cpu, cuda or cuda:N");
  cmd.add_option("--threads", flags.threads,
                 "CPU threads for libtorch (default: the cores this process may use)")
      ->check(CLI::Range(0, 1024));
}

Result<torch::Device> apply_compute_flags(const ComputeFlags& flags) {
  int threads = flags.threads;
  if (threads <= 0) {
    cpu_set_t set;
    threads = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  }
  at::set_num_threads(std::max(threads, 1));
  FEDVAR_ASSIGN_OR_RETURN(auto device, resolve_device(flags.device));
  spdlog::info("{} CPU thread(s), device {}", at::get_num_threads(), device.str());
  return device;
}

Result<std::string> load_key(const std::string& key_file, KeyRole role) {
  const bool client = role == KeyRole::kClient;
  const char* env_var = client ? "FEDVAR_CLIENT_KEY" : "FEDVAR_KEY";
  std::string key;
  if (!key_file.empty()) {
    constexpr uint64_t kMaxKeyBytes = 1 << 16;
    FEDVAR_ASSIGN_OR_RETURN(key, read_file(key_file, kMaxKeyBytes));
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
extern "C" void handle_stop_signal(int) { request_stop(); }
}  // namespace

void stop_on_signals() {
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
      return fail(status_from_exception("unexpected error", e));  // one line
    }
    print_json(result);
    return 0;
  };
}

}  // namespace fedvar::cli

// Pieces shared by the subcommands: loading the data a command names,
// printing results, mapping a Status to an exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/dataset.h"
#include "core/model_io.h"
#include "core/normalization.h"
#include "core/status.h"

namespace fedvar::cli {

// Exit codes: 0 ok, 1 runtime failure, 2 bad input (usage, files, ranges).
int exit_code(const Status& status);

// Logs "error: <message>" on stderr and returns exit_code(status).
int fail(const Status& status);

// Loads `split` of `dir` and narrows it to `range` ("" = all of it).
Result<Dataset> load_split_range(const std::string& dir, const std::string& split,
                                 const std::string& range);

// --normalize on a command that runs a model: MEAN,STD per channel,
// "estimate" (from the data the command reads), or "" for the model file's
// metadata and, without any, none (x / 255). Which one was chosen is logged.
void add_normalize_flag(CLI::App& cmd, std::string& normalize);
Result<Normalization> resolve_normalization(const std::string& flag,
                                            const std::optional<Normalization>& from_file,
                                            const Dataset& data);

// --stem and --in-channels: overrides of what a model file's shapes say.
struct ArchFlags {
  std::string stem;  // "", cifar or imagenet
  int64_t in_channels = 0;
  ArchOverrides overrides() const;
};
void add_arch_flags(CLI::App& cmd, ArchFlags& flags);

// --device and --threads of a command that computes.
struct ComputeFlags {
  std::string device = "auto";
  int threads = 0;  // libtorch's intra-op threads; 0 = the cores this process may use
};
void add_compute_flags(CLI::App& cmd, ComputeFlags& flags);
// Sets the thread count and resolves the device.
Result<torch::Device> apply_compute_flags(const ComputeFlags& flags);

// Whose HMAC key (protocol/auth.h): the server's federation key, default
// $FEDVAR_KEY, or one client's derived key, default $FEDVAR_CLIENT_KEY.
enum class KeyRole { kFederation, kClient };

// The key: the contents of `key_file` (trailing newline dropped) or, without
// one, the role's environment variable. Neither: kInvalidArgument.
Result<std::string> load_key(const std::string& key_file, KeyRole role);

// Makes SIGINT and SIGTERM set the process's stop request (core/stop.h).
void stop_on_signals();

// One JSON object on one line on stdout.
void print_json(const nlohmann::json& j);

// The action of a subcommand whose result is one JSON object: sets up
// logging, runs `run`, prints its JSON on success, maps a Status (or an
// exception from a library) to an error line and an exit code.
std::function<int()> json_action(std::function<Status(nlohmann::json&)> run);

}  // namespace fedvar::cli

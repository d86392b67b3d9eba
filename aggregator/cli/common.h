// Pieces shared by the subcommands: loading the data a command names,
// printing results, mapping a Status to an exit code.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "core/dataset.h"
#include "core/status.h"

namespace fedvar::cli {

// Exit codes: 0 ok, 1 runtime failure, 2 bad input (usage, files, ranges).
int exit_code(const Status& status);

// Logs "error: <message>" on stderr and returns exit_code(status).
int fail(const Status& status);

// Loads `split` of `dir` and narrows it to `range` ("" = all of it).
Result<Dataset> load_split_range(const std::string& dir, const std::string& split,
                                 const std::string& range);

// Whose HMAC key (protocol/auth.h): the server's federation key, default
// $FEDVAR_KEY, or one client's derived key, default $FEDVAR_CLIENT_KEY.
enum class KeyRole { kFederation, kClient };

// The key: the contents of `key_file` (trailing newline dropped) or, without
// one, the role's environment variable. Neither: kInvalidArgument.
Result<std::string> load_key(const std::string& key_file, KeyRole role);

// Routes SIGINT and SIGTERM to `on_signal` (a plain function, it runs in the
// signal handler: set a flag and return).
void on_stop_signal(void (*on_signal)());

// One JSON object on one line on stdout.
void print_json(const nlohmann::json& j);

// The action of a subcommand whose result is one JSON object: sets up
// logging, runs `run`, prints its JSON on success, maps a Status (or an
// exception from a library) to an error line and an exit code.
std::function<int()> json_action(std::function<Status(nlohmann::json&)> run);

}  // namespace fedvar::cli

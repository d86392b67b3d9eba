// Registration of fedvar's subcommands with CLI11. Each subcommand lives in
// its own file and adds itself through register_<name>().
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace fedvar::cli {

// The action chosen by parsing; returns the process exit code
// (0 ok, 1 runtime failure, 2 bad input).
struct Commands {
  std::function<int()> action;
  int run() const { return action ? action() : 2; }
};

void register_train(CLI::App& app, Commands& commands);
void register_eval(CLI::App& app, Commands& commands);
void register_purify(CLI::App& app, Commands& commands);
void register_serve(CLI::App& app, Commands& commands);
void register_client(CLI::App& app, Commands& commands);
void register_simulate(CLI::App& app, Commands& commands);
void register_plot(CLI::App& app, Commands& commands);
void register_client_key(CLI::App& app, Commands& commands);
void register_defenses(CLI::App& app, Commands& commands);
void register_defend(CLI::App& app, Commands& commands);
void register_defend_request(CLI::App& app, Commands& commands);

inline void register_all(CLI::App& app, Commands& commands) {
  register_train(app, commands);
  register_eval(app, commands);
  register_purify(app, commands);
  register_defenses(app, commands);
  register_serve(app, commands);
  register_client(app, commands);
  register_client_key(app, commands);
  register_simulate(app, commands);
  register_plot(app, commands);
  register_defend(app, commands);
  register_defend_request(app, commands);
}

}  // namespace fedvar::cli

// fedvar: one binary, one subcommand per file in this folder.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "core/version.h"

int main(int argc, char** argv) {
  CLI::App app{"fedvar: federated learning with a backdoor defense", "fedvar"};
  app.set_version_flag("--version", std::string("fedvar ") + fedvar::kVersion);
  app.require_subcommand(1);
  fedvar::cli::Commands commands;
  fedvar::cli::register_all(app, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return commands.run();
}

// fedvar defenses: the defenses and their options, from the tables that parse
// them (plugins/registry.h). As JSON Lines, or Markdown for docs/cli.md.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "plugins/registry.h"

namespace fedvar::cli {
namespace {

// A table cell: '|' would end it.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

void print_markdown(const std::vector<plugins::DefenseInfo>& catalog) {
  for (const auto& d : catalog) {
    std::cout << "### " << d.name << "\n\n" << d.summary << ".\n\n";
    std::cout << "| option | default | range | meaning |\n|---|---|---|---|\n";
    for (const auto& o : d.options) {
      std::cout << "| `" << o["name"].get<std::string>() << "` | " << o["default"].dump()
                << " | " << cell(o["range"].get<std::string>()) << " | "
                << cell(o["help"].get<std::string>()) << " |\n";
    }
    std::cout << "\n";
  }
}

}  // namespace

void register_defenses(CLI::App& app, Commands& commands) {
  auto markdown = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "defenses", "List the defenses and their options (spec: NAME:key=value,...)");
  cmd->add_flag("--markdown", *markdown, "Markdown tables instead of JSON Lines");
  cmd->callback([markdown, &commands] {
    commands.action = [markdown] {
      const auto catalog = plugins::defense_catalog();
      if (*markdown) {
        print_markdown(catalog);
        return 0;
      }
      for (const auto& d : catalog) {
        print_json({{"name", d.name}, {"summary", d.summary}, {"options", d.options}});
      }
      return 0;
    };
  });
}

}  // namespace fedvar::cli

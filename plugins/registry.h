// Defenses by name, so that the CLI and the federated server pick one with
// "name:key=value,...": vardefense, fine-pruning, nad, fine-tuning, fst, anp,
// sau, i-bau.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "plugins/defense.h"
#include "plugins/options.h"

namespace fedvar::plugins {

std::vector<std::string> defense_names();

// Unknown name or bad option: kInvalidArgument naming it.
Result<std::unique_ptr<Defense>> make_defense(const std::string& name,
                                              const Options& options);
// "vardefense:alpha=1,layers=2" or just "nad"; "A+B" runs A, then B on A's
// output (plugins/chain.h).
Result<std::unique_ptr<Defense>> make_defense(const std::string& spec);

// One defense as `fedvar defenses` lists it: what it is, and its options
// ({"name", "default", "range", "help"} each) from the table that parses them.
struct DefenseInfo {
  std::string name;
  std::string summary;
  nlohmann::json options;
};
std::vector<DefenseInfo> defense_catalog();

}  // namespace fedvar::plugins

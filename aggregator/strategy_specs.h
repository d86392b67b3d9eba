// A Strategy from the command line's specs: --before (in order), --aggregate
// (one) and --after (in order), each "name[:key=value,...]".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aggregator/strategy.h"
#include "plugins/defense.h"

namespace fedvar::aggregator {

struct StrategySpecs {
  std::vector<std::string> before;   // update_filters.h
  std::string aggregate = "fedavg";  // aggregation_rules.h
  std::vector<std::string> after;    // after_hooks.h
  std::string after_rounds = "all";  // the rounds the after-rules run in
};

// `server` is the server's clean set, normalization and device (for FLTrust
// and the purifying defenses). The first bad spec is kInvalidArgument naming it.
Result<std::unique_ptr<Strategy>> make_strategy(const StrategySpecs& specs,
                                                const plugins::DefenseContext& server);

}  // namespace fedvar::aggregator

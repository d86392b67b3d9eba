#include "aggregator/strategy_specs.h"

#include "aggregator/after_hooks.h"
#include "aggregator/aggregation_rules.h"
#include "aggregator/update_filters.h"

namespace fedvar::aggregator {

Result<std::unique_ptr<Strategy>> make_strategy(const StrategySpecs& specs,
                                                const plugins::DefenseContext& server) {
  std::vector<std::unique_ptr<UpdateFilter>> before;
  for (const auto& spec : specs.before) {
    auto rule = make_update_filter(spec, server);
    if (!rule.ok()) return rule.status().with_context("--before " + spec);
    before.push_back(std::move(rule).value());
  }
  auto on = make_aggregation_rule(specs.aggregate);
  if (!on.ok()) return on.status().with_context("--aggregate " + specs.aggregate);
  std::vector<std::unique_ptr<AfterHook>> after;
  for (const auto& spec : specs.after) {
    auto hook = make_after_hook(spec, server);
    if (!hook.ok()) return hook.status().with_context("--after " + spec);
    after.push_back(std::move(hook).value());
  }
  auto rounds = RoundSchedule::parse(specs.after_rounds);
  if (!rounds.ok()) return rounds.status().with_context("--after-rounds (--hook-rounds)");
  return std::make_unique<Strategy>(std::move(before), std::move(on).value(),
                                    std::move(after), rounds.value());
}

}  // namespace fedvar::aggregator

// The after-aggregation rules a server can run (strategy.h), by spec: any
// defense of plugins/registry.h ("vardefense:preset=federated",
// "fine-tuning", "fine-pruning", "nad"), run on the server's clean set, and
//  crfl:clip=15,sigma=0.01  CRFL (Xie et al., ICML 2021): the global model's
//                           parameters clipped to L2 norm `clip`, then
//                           Gaussian noise with std `sigma` on every
//                           parameter (BatchNorm statistics untouched).
#pragma once

#include <memory>
#include <string>

#include "aggregator/strategy.h"
#include "plugins/defense.h"

namespace fedvar::aggregator {

// An after-rule from its spec. A defense gets `server` (clean set,
// normalization, device) with a fresh seed per round (server.seed + round)
// and one holdout split for the whole run. kInvalidArgument for an unknown
// name or option.
Result<std::unique_ptr<AfterHook>> make_after_hook(const std::string& spec,
                                                   const plugins::DefenseContext& server);

// `defense` as an after-rule, run on `server` as make_after_hook's are.
std::unique_ptr<AfterHook> defense_hook(std::unique_ptr<plugins::Defense> defense,
                                        plugins::DefenseContext server);

}  // namespace fedvar::aggregator

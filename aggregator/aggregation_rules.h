// The aggregation rules a server can run ("on" aggregation; strategy.h), by
// spec: "fedavg", "median", "trimmed-mean:beta=0.1", "krum:f=1",
// "multi-krum:f=1,m=0", "bulyan:f=1". Each works on the updates' deltas from
// the global model (robust_rules.h has the math and the papers); the
// coordinate-wise and Krum rules are shift-invariant, so this equals running
// them on the models, as Flower does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aggregator/strategy.h"

namespace fedvar::aggregator {

// The names make_aggregation_rule knows.
std::vector<std::string> aggregation_rule_names();

// A rule from its spec. kInvalidArgument for an unknown name or option.
//  fedavg        McMahan et al. 2017: the mean weighted by sample counts
//                (streamed: one running sum, whatever the number of clients).
//  median        coordinate-wise median (Yin et al. 2018); ignores counts.
//  trimmed-mean  coordinate-wise mean without the beta share of lowest and
//                highest values (Yin et al. 2018); beta=0.1.
//  krum          the update with the lowest Krum score (Blanchard et al.
//                2017); f=1 attackers assumed; refuses n <= 2f + 2.
//  multi-krum    the sample-weighted mean of the m lowest-scoring updates;
//                f=1, m=0 (n - f).
//  bulyan        El Mhamdi et al. 2018; f=1; refuses n < 4f + 3.
Result<std::unique_ptr<AggregationRule>> make_aggregation_rule(const std::string& spec);

}  // namespace fedvar::aggregator

// The before-aggregation rules a server can run (strategy.h), by spec:
//  norm-clip:bound=B  norm-difference clipping (Sun et al., "Can you really
//                     backdoor federated learning?", 2019): every update's
//                     delta scaled to L2 norm <= B. B has no default: it
//                     depends on the model and the clients' training.
//  flame:lambda=0.001 FLAME (Nguyen et al., USENIX Security 2022): HDBSCAN
//                     over the updates' pairwise cosine distances (min cluster
//                     size n/2 + 1, one cluster allowed); updates outside the
//                     majority cluster are excluded; the rest are clipped to
//                     the median L2 norm S of all deltas; after aggregation
//                     Gaussian noise with std lambda x S is added.
//  fltrust            FLTrust (Cao et al., NDSS 2021): the server trains the
//                     global model on its clean set with the round's settings;
//                     trust = ReLU(cosine(client delta, server delta)); each
//                     delta rescaled to the server delta's norm; the updates
//                     then count by trust alone (weight = trust).
// None reads who is malicious, the trigger or the target.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aggregator/strategy.h"
#include "plugins/defense.h"

namespace fedvar::aggregator {

std::vector<std::string> update_filter_names();

// A before-rule from its spec. `server` (clean set, normalization, device)
// is what fltrust trains on. kInvalidArgument for an unknown name or option.
Result<std::unique_ptr<UpdateFilter>> make_update_filter(
    const std::string& spec, const plugins::DefenseContext& server);

}  // namespace fedvar::aggregator

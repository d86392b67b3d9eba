// A malicious client's plan: which trigger it stamps on its own batches, the
// label it wants, in which rounds, and how much it scales its update.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/round_schedule.h"
#include "core/state_dict.h"
#include "core/status.h"
#include "core/trigger.h"

namespace fedvar::client_sim {

struct Attack {
  TriggerSpec trigger;  // e.g. one DBA piece
  int64_t target = 0;
  double ratio = 0.05;   // share of each mini-batch poisoned (the paper's 0.05)
  RoundSchedule rounds;  // when it poisons
  // Model replacement (Bagdasaryan et al., AISTATS 2020): the update sent is
  // global + scale * (local - global); 1 = plain poisoned training.
  double scale = 1.0;
};

// global + scale * (local - global) for every trainable parameter (what
// Bagdasaryan et al. scale); BatchNorm's buffers (running statistics,
// num_batches_tracked) stay local's, so they remain valid statistics. kInvalidArgument when names, dtypes or shapes differ.
Result<StateDict> scale_update(const StateDict& local, const StateDict& global,
                               double scale);

}  // namespace fedvar::client_sim

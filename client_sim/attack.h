// A malicious client's plan: which trigger it stamps on its own batches, the
// label it wants, in which rounds, and how much it scales its update.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/trigger.h"

namespace fedvar::client_sim {

// The rounds (1-based) an attacker poisons: "all", or a comma-separated list
// of rounds and inclusive spans, e.g. "1,3,5-8" or "10-".
class AttackSchedule {
 public:
  static Result<AttackSchedule> parse(const std::string& text);
  bool contains(int round) const;
  std::string to_string() const { return text_; }

 private:
  std::vector<std::pair<int, int>> spans_;  // inclusive; second = INT_MAX for "10-"
  std::string text_ = "all";
};

struct Attack {
  TriggerSpec trigger;  // e.g. one DBA piece
  int64_t target = 0;
  double ratio = 0.05;  // share of each mini-batch poisoned (the paper's 0.05)
  AttackSchedule rounds;
  // Model replacement (Bagdasaryan et al., AISTATS 2020): the update sent is
  // global + scale * (local - global); 1 = plain poisoned training.
  double scale = 1.0;
};

using StateDict = std::map<std::string, torch::Tensor>;

// global + scale * (local - global) for every floating tensor; integer
// buffers stay local's. kInvalidArgument when names or shapes differ.
Result<StateDict> scale_update(const StateDict& local, const StateDict& global,
                               double scale);

}  // namespace fedvar::client_sim

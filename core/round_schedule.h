// A set of rounds (1-based) written as "all", or a comma-separated list of
// rounds and inclusive spans, e.g. "1,3,5-8" or "10-": when an attacker
// poisons, when the server runs its hooks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fedvar {

class RoundSchedule {
 public:
  // kInvalidArgument on an empty list, a round < 1, a malformed or empty span.
  static Result<RoundSchedule> parse(const std::string& text);
  bool contains(int round) const;
  std::string to_string() const { return text_; }

 private:
  std::vector<std::pair<int, int>> spans_;  // inclusive; second = INT_MAX for "10-"
  std::string text_ = "all";
};

}  // namespace fedvar

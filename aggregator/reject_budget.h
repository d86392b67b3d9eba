// How many rejects the server still sends a peer: a burst, then one per
// interval (a token bucket per connection). A peer that sends refused
// messages faster than that gets no answer to the rest, so a flood of them
// costs the server no more sends, and its log no more lines, than the budget.
// The table of peers is bounded: beyond kMaxPeers the one not heard from
// for longest is forgotten. Not thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "core/stopwatch.h"

namespace fedvar::aggregator {

class RejectBudget {
 public:
  static constexpr double kBurst = 10;       // rejects a peer may get at once
  static constexpr double kPerSecond = 1;    // then this many per second
  static constexpr size_t kMaxPeers = 4096;  // peers remembered

  // Whether `peer` may be sent a reject at `now`; if so, it is counted.
  bool take(const std::string& peer, Clock::time_point now);

 private:
  struct Bucket {
    double tokens = kBurst;
    Clock::time_point refilled;
  };
  void forget_oldest();

  std::map<std::string, Bucket> buckets_;
};

}  // namespace fedvar::aggregator

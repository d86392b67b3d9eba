#include "aggregator/reject_budget.h"

#include <algorithm>
#include <chrono>

namespace fedvar::aggregator {

bool RejectBudget::take(const std::string& peer, Clock::time_point now) {
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxPeers) forget_oldest();
    it = buckets_.emplace(peer, Bucket{kBurst, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
  b.tokens = std::min(kBurst, b.tokens + std::max(elapsed, 0.0) * kPerSecond);
  b.refilled = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void RejectBudget::forget_oldest() {
  auto oldest = buckets_.begin();
  for (auto it = buckets_.begin(); it != buckets_.end(); ++it) {
    if (it->second.refilled < oldest->second.refilled) oldest = it;
  }
  if (oldest != buckets_.end()) buckets_.erase(oldest);
}

}  // namespace fedvar::aggregator

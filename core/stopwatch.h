// Wall-clock timing for reports and metrics (their "seconds" keys).
#pragma once

#include <chrono>

namespace fedvar {

using Clock = std::chrono::steady_clock;

// Seconds elapsed since `start`.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace fedvar

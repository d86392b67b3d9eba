// Test helper: how much memory a call takes at its peak, read from Linux's
// high-water mark of resident memory (VmHWM), which clear_refs resets.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace fedvar::test_data {

// The process's resident memory now (field "VmRSS") or at its peak ("VmHWM"),
// in KiB; nullopt where /proc does not say.
inline std::optional<int64_t> proc_status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return std::nullopt;
}

// MiB by which `call` raised the peak resident memory above what was resident
// before it; nullopt where the peak cannot be reset (then nothing is measured).
template <typename Call>
std::optional<int64_t> peak_growth_mib(Call&& call) {
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";  // resets VmHWM to the current VmRSS
    clear.flush();
    if (!clear) {
      call();
      return std::nullopt;
    }
  }
  const std::optional<int64_t> before = proc_status_kib("VmRSS");
  call();
  const std::optional<int64_t> peak = proc_status_kib("VmHWM");
  if (!before || !peak) return std::nullopt;
  return (*peak - *before) / 1024;
}

}  // namespace fedvar::test_data

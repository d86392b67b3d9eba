// The process's one stop request. The command line sets it on SIGINT or
// SIGTERM; the server's, the client's and the simulation's loops read it and
// wind down (the server still tells its clients to stop).
#pragma once

#include <atomic>

namespace fedvar {

// Async-signal-safe: may be called from a signal handler.
void request_stop() noexcept;
bool stop_requested() noexcept;
// The flag itself, for code that waits on an atomic (ProcessGroup::wait).
const std::atomic<bool>& stop_flag() noexcept;

}  // namespace fedvar

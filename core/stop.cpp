#include "core/stop.h"

namespace fedvar {
namespace {
std::atomic<bool> g_stop{false};
}  // namespace

void request_stop() noexcept { g_stop = true; }
bool stop_requested() noexcept { return g_stop; }
const std::atomic<bool>& stop_flag() noexcept { return g_stop; }

}  // namespace fedvar

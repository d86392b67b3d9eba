// Progress logging: one line per event on stderr (spdlog), so that stdout
// carries only results.
#pragma once

#include <spdlog/spdlog.h>

namespace fedvar {

// Routes spdlog's default logger to stderr with a short time prefix. Level
// from FEDVAR_LOG (trace, debug, info, warn, error, off; default info).
void init_logging();

}  // namespace fedvar

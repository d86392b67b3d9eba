#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>

namespace fedvar {

void init_logging() {
  auto logger = spdlog::stderr_logger_st("fedvar");
  logger->set_pattern("[%H:%M:%S] %v");
  const char* level = std::getenv("FEDVAR_LOG");
  logger->set_level(level ? spdlog::level::from_str(level) : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace fedvar

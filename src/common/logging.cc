#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace granary {

void InitLogging(std::string_view level) {
  // Logs go to stderr: stdout carries what commands print for machines (bench JSON, the
  // server's ready line).
  auto logger = spdlog::stderr_color_mt("granary");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace granary

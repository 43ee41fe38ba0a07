#include "common/logging.h"

#include <string>

namespace granary {

void InitLogging(std::string_view level) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace granary

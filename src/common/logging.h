// Logging through spdlog. Call InitLogging once from main(); libraries only log.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace granary {

// Sets the default logger's level ("trace".."off") and a pattern with time, level and thread.
void InitLogging(std::string_view level);

}  // namespace granary

#define GLOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define GLOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define GLOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define GLOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

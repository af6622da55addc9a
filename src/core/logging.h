// Logging goes to stderr through spdlog, so stdout stays clean for JSON results.
#pragma once

#include <spdlog/spdlog.h>

namespace msi {
// Sets up the stderr logger once; level from MSI_LOG_LEVEL (see core/env.h), default "warn".
void init_logging();
}  // namespace msi

#define MSI_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define MSI_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define MSI_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define MSI_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

// Every environment variable msinfer reads is declared here, and read nowhere else.
#pragma once

#include <string>

namespace msi::env {

// MSI_LOG_LEVEL: trace|debug|info|warn|error|off (default warn).
std::string log_level();

}  // namespace msi::env

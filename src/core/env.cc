#include "core/env.h"

#include <cstdlib>

namespace msi::env {

static std::string get(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string(fallback);
}

std::string log_level() { return get("MSI_LOG_LEVEL", "warn"); }

}  // namespace msi::env

#include "core/env.h"

#include <cstdlib>

namespace msi::env {

static std::string get(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string(fallback);
}

static std::optional<std::string> get_optional(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string log_level() { return get("MSI_LOG_LEVEL", "warn"); }

std::optional<std::string> master_addr() { return get_optional("MASTER_ADDR"); }
std::optional<std::string> master_port() { return get_optional("MASTER_PORT"); }
std::optional<std::string> rank() { return get_optional("RANK"); }
std::optional<std::string> world_size() { return get_optional("WORLD_SIZE"); }

}  // namespace msi::env

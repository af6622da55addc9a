// Invariant checks: a failed MSI_CHECK is a bug, reported with file and line, then abort().
// Recoverable conditions return a Status instead (core/status.h).
#pragma once

#include <fmt/format.h>

namespace msi::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace msi::detail

#define MSI_CHECK(cond, ...)                                                                 \
  do {                                                                                       \
    if (!(cond)) [[unlikely]] {                                                              \
      ::msi::detail::check_failed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_ARGS__)); \
    }                                                                                        \
  } while (0)

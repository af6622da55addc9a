// ASSERT_OK / EXPECT_OK for a Status or Result<T>: on failure the message is the status's own.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/status.h"

namespace msi::test {

inline std::string describe(const Status& s) { return s.to_string(); }
template <typename T>
std::string describe(const Result<T>& r) {
  return r.status().to_string();
}

}  // namespace msi::test

#define ASSERT_OK(expr)                                           \
  do {                                                            \
    const auto& msi_r_ = (expr);                                  \
    ASSERT_TRUE(msi_r_.is_ok()) << ::msi::test::describe(msi_r_); \
  } while (0)
#define EXPECT_OK(expr)                                           \
  do {                                                            \
    const auto& msi_r_ = (expr);                                  \
    EXPECT_TRUE(msi_r_.is_ok()) << ::msi::test::describe(msi_r_); \
  } while (0)

// Compares two `msinfer generate --return-logits` runs: both exit 0, every request's tokens are
// equal and its logits agree within `tol` (absolute). For the tests that run one deployment
// against another (placements, plans, transports).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace msi::test {

inline void expect_same_generate_outputs(const RunResult& a, const RunResult& b,
                                         const std::string& what, double tol = 1e-5) {
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << what << ": " << b.err;
  const nlohmann::json ra = nlohmann::json::parse(a.out)["results"],
                       rb = nlohmann::json::parse(b.out)["results"];
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i]["output_ids"], rb[i]["output_ids"]) << what << " request " << i;
    double max_abs = 0;
    for (size_t j = 0; j < ra[i]["logits"].size(); ++j) {
      for (size_t v = 0; v < ra[i]["logits"][j].size(); ++v) {
        max_abs = std::max(max_abs, std::fabs(ra[i]["logits"][j][v].get<double>() -
                                              rb[i]["logits"][j][v].get<double>()));
      }
    }
    EXPECT_LE(max_abs, tol) << what << " request " << i;
  }
}

}  // namespace msi::test

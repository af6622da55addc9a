// Token embedding lookup: a row gather.
#include <cstring>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {

void embedding(const float* table, const int32_t* ids, float* out, int64_t n, int64_t d) {
  MSI_CHECK(n >= 0 && d >= 0, "embedding: n={} d={}", n, d);
  for (int64_t r = 0; r < n; ++r) {
    // The upper bound is the caller's to check (it knows the vocab); a negative id is a bug here.
    MSI_CHECK(ids[r] >= 0, "embedding: ids[{}]={}", r, ids[r]);
    std::memcpy(out + r * d, table + static_cast<int64_t>(ids[r]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
}

}  // namespace msi::cpu

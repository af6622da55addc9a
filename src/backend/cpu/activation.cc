// Element-wise activations, written as torch writes them so results round the same way.
#include <cmath>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  MSI_CHECK(n >= 0, "swiglu: n={}", n);
  // For very negative g, exp(-g) overflows to inf and silu(g) becomes -0: the correct limit.
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + std::exp(-g))) * up[i];
  }
}

void sigmoid(const float* x, float* out, int64_t n) {
  MSI_CHECK(n >= 0, "sigmoid: n={}", n);
  for (int64_t i = 0; i < n; ++i) out[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

}  // namespace msi::cpu

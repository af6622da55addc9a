// linear: y = x · wᵀ (+ bias), the weight layout Hugging Face checkpoints use ([out, in]).
#include <algorithm>
#include <climits>
#include <cstring>

#include <cblas.h>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {

void linear(const float* x, const float* w, const float* bias, float* y, int64_t m, int64_t n,
            int64_t k) {
  MSI_CHECK(m >= 0 && n >= 0 && k >= 0, "linear: m={} n={} k={}", m, n, k);
  // NOTE: the CBLAS interface takes 32-bit sizes (OpenBLAS without INTERFACE64).
  MSI_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "linear: m={} n={} k={}", m, n, k);
  if (m == 0 || n == 0) return;

  // Seed y with the bias (or zeros) and let sgemm accumulate into it with beta = 1: one pass over
  // y instead of a second bias pass.
  for (int64_t r = 0; r < m; ++r) {
    float* y_row = y + r * n;
    if (bias != nullptr) {
      std::memcpy(y_row, bias, static_cast<size_t>(n) * sizeof(float));
    } else {
      std::fill(y_row, y_row + n, 0.0f);
    }
  }
  // BLAS requires lda >= max(1, k); with k == 0 the product is empty and y is already final.
  if (k == 0) return;

  // Row-major [m, k] · ([n, k])ᵀ -> [m, n].
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), 1.0f, y,
              static_cast<int>(n));
}

}  // namespace msi::cpu

// RMSNorm as Hugging Face computes it (LlamaRMSNorm and its copies): fp32 variance, rsqrt, then
// (x * rsqrt) * weight, in that order.
#include <cmath>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {
namespace {

// One row: y[d] = x[d] * (1 / sqrt(mean(x²) + eps)) * w[d]. y == x allowed: every x[i] is read
// before y[i] is written.
void rms_norm_row(const float* x, const float* w, float* y, int64_t d, float eps) {
  // Double accumulation keeps the mean accurate for wide rows (torch uses a cascaded fp32 sum;
  // both are well inside the fp32 rounding of the result).
  double sum_sq = 0.0;
  for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum_sq / static_cast<double>(d));
  const float inv_rms = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < d; ++i) y[i] = (x[i] * inv_rms) * w[i];
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps) {
  MSI_CHECK(n >= 0 && d > 0, "rms_norm: n={} d={}", n, d);
  for (int64_t r = 0; r < n; ++r) rms_norm_row(x + r * d, w, y + r * d, d, eps);
}

void add_rms_norm(float* residual, const float* x, const float* w, float* y, int64_t n, int64_t d,
                  float eps) {
  MSI_CHECK(n >= 0 && d > 0, "add_rms_norm: n={} d={}", n, d);
  // Row by row so the freshly summed residual row is still in cache when it is normalized.
  for (int64_t r = 0; r < n; ++r) {
    float* res_row = residual + r * d;
    const float* x_row = x + r * d;
    for (int64_t i = 0; i < d; ++i) res_row[i] += x_row[i];
    rms_norm_row(res_row, w, y + r * d, d, eps);
  }
}

}  // namespace msi::cpu

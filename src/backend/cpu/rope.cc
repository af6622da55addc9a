// Rotary position embedding, "rotate_half" layout, rounded the way Hugging Face rounds it.
#include <cmath>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {

void rope(float* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
          double theta) {
  MSI_CHECK(n_tokens >= 0 && n_heads >= 0, "rope: n_tokens={} n_heads={}", n_tokens, n_heads);
  MSI_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim={} must be even", head_dim);
  MSI_CHECK(theta > 0.0, "rope: theta={}", theta);
  const int64_t half = head_dim / 2;

  for (int64_t t = 0; t < n_tokens; ++t) {
    // NOTE: HF keeps inv_freq in fp32 and forms the angle as an fp32 product pos * inv_freq
    // before cos/sin. At positions in the thousands that product's rounding moves the output
    // by ~1e-4, so matching it (rather than computing the angle in double) is what keeps us
    // within tolerance of the reference.
    const float pos = static_cast<float>(positions[t]);
    float* x_tok = x + t * n_heads * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float inv_freq = static_cast<float>(
          1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim)));
      const float angle = pos * inv_freq;
      const float c = std::cos(angle);
      const float s = std::sin(angle);
      // Every head of this token shares the angle; compute cos/sin once per (token, i).
      for (int64_t h = 0; h < n_heads; ++h) {
        float* x_head = x_tok + h * head_dim;
        const float x1 = x_head[i];
        const float x2 = x_head[i + half];
        x_head[i] = x1 * c - x2 * s;
        x_head[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

}  // namespace msi::cpu

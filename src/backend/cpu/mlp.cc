// The SwiGLU MLP shared by dense layers and every expert: down(silu(gate(x)) * up(x)).
#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {

void swiglu_mlp(const float* x, const float* gate_w, const float* up_w, const float* down_w,
                float* y, int64_t m, int64_t hidden, int64_t inter, float* scratch) {
  MSI_CHECK(m >= 0 && hidden > 0 && inter > 0, "swiglu_mlp: m={} hidden={} inter={}", m, hidden,
            inter);
  float* gate = scratch;            // [m, inter]
  float* up = scratch + m * inter;  // [m, inter]
  linear(x, gate_w, nullptr, gate, m, inter, hidden);
  linear(x, up_w, nullptr, up, m, inter, hidden);
  swiglu(gate, up, gate, m * inter);  // act: [m, inter], over gate's storage
  linear(gate, down_w, nullptr, y, m, hidden, inter);
}

}  // namespace msi::cpu

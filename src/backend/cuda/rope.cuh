// Rotary position embedding, "rotate_half" layout, as backend/cpu/rope.cc computes it.
// Enqueues on `stream`; never blocks or allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

// x: [n_tokens, n_heads, head_dim] bf16, rotated in place; positions: [n_tokens] int32.
// Requires head_dim even. inv_freq_i = float(1 / theta^(2i/head_dim)) computed in double, the
// angle pos * inv_freq in fp32, as the CPU op (and HF) do.
void launch_rope(__nv_bfloat16* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads,
                 int64_t head_dim, double theta, cudaStream_t stream);

}  // namespace msi::cuda

// RoPE: one block per token; threads stride over (head, i < head_dim/2) pairs.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/rope.cuh"

namespace msi::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void rope_kernel(bf16* x, const int32_t* positions, int64_t n_heads, int64_t head_dim,
                            double theta) {
  const int64_t t = blockIdx.x;
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  bf16* x_tok = x + t * n_heads * head_dim;
  for (int64_t p = threadIdx.x; p < n_heads * half; p += blockDim.x) {
    const int64_t h = p / half;
    const int64_t i = p % half;
    const float inv_freq = static_cast<float>(
        1.0 / pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim)));
    const float angle = pos * inv_freq;
    float s, c;
    sincosf(angle, &s, &c);  // full-precision (no --use_fast_math in this build)
    bf16* x_head = x_tok + h * head_dim;
    const float x1 = to_f32(x_head[i]);
    const float x2 = to_f32(x_head[i + half]);
    x_head[i] = to_bf16(x1 * c - x2 * s);
    x_head[i + half] = to_bf16(x2 * c + x1 * s);
  }
}

}  // namespace

void launch_rope(bf16* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads,
                 int64_t head_dim, double theta, cudaStream_t stream) {
  if (n_tokens == 0 || n_heads == 0) return;
  rope_kernel<<<static_cast<unsigned>(n_tokens), kThreads, 0, stream>>>(x, positions, n_heads,
                                                                        head_dim, theta);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

// RMSNorm: one block per row, fp32 sum of squares with warp/block reductions.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/norm.cuh"

namespace msi::cuda {
namespace {

constexpr int kThreads = 256;

// NOTE: every element is read and written by the same thread in both passes, so in-place use
// (y == x, or the residual update read back in pass 2) needs no extra barrier.
template <bool kAddResidual>
__global__ void rms_norm_kernel(bf16* residual, const bf16* x, const bf16* w, bf16* y, int64_t d,
                                float eps) {
  const int64_t row = blockIdx.x;
  const bf16* x_row = x + row * d;
  bf16* y_row = y + row * d;
  bf16* res_row = kAddResidual ? residual + row * d : nullptr;

  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v;
    if constexpr (kAddResidual) {
      const bf16 r = to_bf16(to_f32(res_row[i]) + to_f32(x_row[i]));
      res_row[i] = r;
      v = to_f32(r);
    } else {
      v = to_f32(x_row[i]);
    }
    sum_sq += v * v;
  }
  const float variance = block_sum(sum_sq) / static_cast<float>(d);
  const float inv_rms = rsqrtf(variance + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = kAddResidual ? to_f32(res_row[i]) : to_f32(x_row[i]);
    // HF order: normalize, round to the activation dtype, then scale by the weight.
    y_row[i] = to_bf16(round_bf16(v * inv_rms) * to_f32(w[i]));
  }
}

}  // namespace

void launch_rms_norm(const bf16* x, const bf16* w, bf16* y, int64_t n, int64_t d, float eps,
                     cudaStream_t stream) {
  if (n == 0 || d == 0) return;
  rms_norm_kernel<false><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(nullptr, x, w, y, d,
                                                                            eps);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_add_rms_norm(bf16* residual, const bf16* x, const bf16* w, bf16* y, int64_t n,
                         int64_t d, float eps, cudaStream_t stream) {
  if (n == 0 || d == 0) return;
  rms_norm_kernel<true><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(residual, x, w, y, d,
                                                                           eps);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

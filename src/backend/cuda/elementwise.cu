// Element-wise kernels: grid-stride loops, 256 threads per block.
#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"

namespace msi::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 65535u * 16u;

unsigned blocks_for(int64_t n) {
  const unsigned b = ceil_div(n, kThreads);
  return b < kMaxBlocks ? b : kMaxBlocks;
}

__device__ __forceinline__ int64_t grid_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__global__ void add_kernel(bf16* out, const bf16* y, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = to_bf16(to_f32(out[i]) + to_f32(y[i]));
}

__global__ void add_sigmoid_scaled_kernel(bf16* out, const bf16* gate_logit, const bf16* y,
                                          int64_t m, int64_t d) {
  for (int64_t i = grid_index(); i < m * d; i += grid_stride()) {
    const float g = to_f32(gate_logit[i / d]);
    const float s = 1.0f / (1.0f + expf(-g));
    out[i] = to_bf16(to_f32(out[i]) + s * to_f32(y[i]));
  }
}

__global__ void swiglu_kernel(const bf16* gate, const bf16* up, bf16* act, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const float g = to_f32(gate[i]);
    // For very negative g, expf(-g) is inf and silu(g) becomes -0: the correct limit.
    const float silu = round_bf16(g / (1.0f + expf(-g)));
    act[i] = to_bf16(silu * to_f32(up[i]));
  }
}

template <typename T>
__global__ void broadcast_rows_kernel(const bf16* bias, T* y, int64_t m, int64_t n) {
  for (int64_t i = grid_index(); i < m * n; i += grid_stride()) {
    y[i] = from_f32<T>(to_f32(bias[i % n]));
  }
}

}  // namespace

void launch_add(bf16* out, const bf16* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, y, n);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_add_sigmoid_scaled(bf16* out, const bf16* gate_logit, const bf16* y, int64_t m,
                               int64_t d, cudaStream_t stream) {
  if (m == 0 || d == 0) return;
  add_sigmoid_scaled_kernel<<<blocks_for(m * d), kThreads, 0, stream>>>(out, gate_logit, y, m, d);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_swiglu(const bf16* gate, const bf16* up, bf16* act, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  swiglu_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, act, n);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_broadcast_rows(const bf16* bias, bf16* y, int64_t m, int64_t n, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  broadcast_rows_kernel<bf16><<<blocks_for(m * n), kThreads, 0, stream>>>(bias, y, m, n);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_broadcast_rows(const bf16* bias, float* y, int64_t m, int64_t n, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  broadcast_rows_kernel<float><<<blocks_for(m * n), kThreads, 0, stream>>>(bias, y, m, n);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

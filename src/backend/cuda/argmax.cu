#include "backend/cuda/argmax.cuh"

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace msi::cuda {
namespace {

constexpr int kThreads = 512;

// Larger value first; on a tie the lower id (as the CPU sampler's argmax).
__device__ __forceinline__ bool better(float va, int32_t a, float vb, int32_t b) {
  return va > vb || (va == vb && a < b);
}

// One block per row.
__global__ void argmax_kernel(const float* logits, int64_t vocab, int32_t* ids) {
  __shared__ float best_v[kThreads / kWarpSize];
  __shared__ int32_t best_i[kThreads / kWarpSize];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float v = -INFINITY;
  int32_t idx = INT32_MAX;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float x = row[j];
    if (better(x, static_cast<int32_t>(j), v, idx)) {
      v = x;
      idx = static_cast<int32_t>(j);
    }
  }
  for (int o = kWarpSize / 2; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (better(ov, oi, v, idx)) {
      v = ov;
      idx = oi;
    }
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) {
    best_v[warp] = v;
    best_i[warp] = idx;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / kWarpSize; ++w) {
      if (better(best_v[w], best_i[w], v, idx)) {
        v = best_v[w];
        idx = best_i[w];
      }
    }
    ids[blockIdx.x] = idx == INT32_MAX ? 0 : idx;  // an all-NaN row: id 0, like the CPU loop
  }
}

}  // namespace

void launch_argmax_rows(const float* logits, int64_t n, int64_t vocab, int32_t* ids, cudaStream_t stream) {
  if (n == 0) return;
  argmax_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, vocab, ids);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

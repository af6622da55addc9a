// Router top-k (one warp per token) and row gather / scatter-add (one block per row).
#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe.cuh"

namespace msi::cuda {
namespace {

constexpr int kRouterWarpsPerBlock = 4;

// Larger probability first; on a tie the lower id. Same rule as the CPU op.
__device__ __forceinline__ bool ranks_before(float pa, int32_t a, float pb, int32_t b) {
  return pa > pb || (pa == pb && a < b);
}

__global__ void router_topk_kernel(const float* logits, int64_t n, int64_t n_experts,
                                   int64_t top_k, bool normalize, int32_t* ids, float* weights) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRouterWarpsPerBlock + threadIdx.x / kWarpSize;
  if (r >= n) return;  // whole warp exits together
  const int lane = threadIdx.x % kWarpSize;
  const float* row = logits + r * n_experts;

  float max_logit = -INFINITY;
  for (int64_t e = lane; e < n_experts; e += kWarpSize) max_logit = fmaxf(max_logit, row[e]);
  max_logit = warp_max(max_logit);
  float sum = 0.0f;
  for (int64_t e = lane; e < n_experts; e += kWarpSize) sum += expf(row[e] - max_logit);
  sum = warp_sum(sum);

  // Pick k: the best expert ranking strictly after pick k-1. Lane k keeps pick k.
  float prev_p = 0.0f;
  int32_t prev_id = -1;
  float my_p = 0.0f;
  int32_t my_id = -1;
  for (int64_t k = 0; k < top_k; ++k) {
    float best_p = 0.0f;
    int32_t best = -1;
    for (int64_t e = lane; e < n_experts; e += kWarpSize) {
      const float p = expf(row[e] - max_logit) / sum;  // the CPU op's formula, rounded alike
      const auto id = static_cast<int32_t>(e);
      if (k > 0 && !ranks_before(prev_p, prev_id, p, id)) continue;
      if (best < 0 || ranks_before(p, id, best_p, best)) {
        best = id;
        best_p = p;
      }
    }
    // Warp argmax under ranks_before; -1 (nothing left) loses to any candidate.
    for (int o = kWarpSize / 2; o > 0; o >>= 1) {
      const float other_p = __shfl_xor_sync(0xffffffffu, best_p, o);
      const int32_t other = __shfl_xor_sync(0xffffffffu, best, o);
      if (other >= 0 && (best < 0 || ranks_before(other_p, other, best_p, best))) {
        best = other;
        best_p = other_p;
      }
    }
    if (lane == k) {
      my_id = best;
      my_p = best_p;
    }
    prev_p = best_p;
    prev_id = best;
  }

  const bool holds_pick = lane < top_k;
  float selected = warp_sum(holds_pick ? my_p : 0.0f);
  if (holds_pick) {
    ids[r * top_k + lane] = my_id;
    weights[r * top_k + lane] = normalize ? my_p / selected : my_p;
  }
}

__global__ void gather_rows_kernel(const bf16* src, const int32_t* rows, bf16* out, int64_t d) {
  const int64_t i = blockIdx.x;
  const bf16* s = src + static_cast<int64_t>(rows[i]) * d;
  bf16* o = out + i * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = s[j];
}

__global__ void scatter_add_rows_kernel(const bf16* src, const int32_t* rows, const float* scale,
                                        bf16* out, int64_t d) {
  const int64_t i = blockIdx.x;
  const float s = scale[i];
  const bf16* x = src + i * d;
  bf16* o = out + static_cast<int64_t>(rows[i]) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = to_bf16(to_f32(o[j]) + s * to_f32(x[j]));
}

}  // namespace

void launch_router_topk(const float* logits, int64_t n, int64_t n_experts, int64_t top_k,
                        bool normalize, int32_t* ids, float* weights, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = ceil_div(n, kRouterWarpsPerBlock);
  router_topk_kernel<<<blocks, kRouterWarpsPerBlock * kWarpSize, 0, stream>>>(
      logits, n, n_experts, top_k, normalize, ids, weights);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_gather_rows(const bf16* src, const int32_t* rows, bf16* out, int64_t n, int64_t d,
                        cudaStream_t stream) {
  if (n == 0 || d == 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, rows, out, d);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_scatter_add_rows(const bf16* src, const int32_t* rows, const float* scale, bf16* out,
                             int64_t n, int64_t d, cudaStream_t stream) {
  if (n == 0 || d == 0) return;
  scatter_add_rows_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, rows, scale, out, d);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

// Paged attention, correct and simple first: one block per (query token, head), kWarps warps;
// warp w takes keys w, w + kWarps, ... with its own fp32 online softmax (lanes split head_dim),
// and the warps' partial states are merged through shared memory at the end.
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace msi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kDimsPerLane = static_cast<int>(kMaxHeadDim / kWarpSize);

__global__ void kv_append_kernel(const bf16* k, const bf16* v, bf16* k_cache, bf16* v_cache,
                                 const int32_t* slot_mapping, int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0) return;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[slot * kv_dim + i] = k[t * kv_dim + i];
    v_cache[slot * kv_dim + i] = v[t * kv_dim + i];
  }
}

// grid: (n_tokens, n_heads) (tokens on x: gridDim.y is capped at 65535). Dynamic shared memory: q as fp32 [head_dim], then the merge area
// [kWarps, head_dim] accumulators + [kWarps] maxima + [kWarps] sums.
__global__ void paged_attention_kernel(const bf16* q, const bf16* k_cache, const bf16* v_cache,
                                       bf16* out, PagedAttentionArgs a) {
  extern __shared__ float smem[];
  const int64_t head_dim = a.head_dim;
  float* q_s = smem;                          // [head_dim]
  float* acc_s = q_s + head_dim;              // [kWarps, head_dim]
  float* max_s = acc_s + kWarps * head_dim;   // [kWarps]
  float* sum_s = max_s + kWarps;              // [kWarps]

  const int64_t t = blockIdx.x;
  const int64_t h = blockIdx.y;
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t kv_head = h / group;
  const int64_t row_stride = a.n_kv_heads * head_dim;  // elements per cache slot

  const int64_t q_off = (t * a.n_heads + h) * head_dim;
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) q_s[d] = to_f32(q[q_off + d]);
  __syncthreads();

  const int32_t seq = a.token_seq[t];
  const int32_t* block_table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  int64_t n_keys = static_cast<int64_t>(a.token_pos[t]) + 1;
  n_keys = min(n_keys, a.max_blocks_per_seq * a.block_size);

  float running_max = -INFINITY;
  float running_sum = 0.0f;
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;

  for (int64_t j = warp; j < n_keys; j += kWarps) {
    const int64_t block = block_table[j / a.block_size];
    const int64_t slot = block * a.block_size + j % a.block_size;
    const int64_t off = slot * row_stride + kv_head * head_dim;
    const bf16* k_row = k_cache + off;
    const bf16* v_row = v_cache + off;
    float partial = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + i * kWarpSize;
      if (d < head_dim) partial += q_s[d] * to_f32(k_row[d]);
    }
    const float score = warp_sum(partial) * a.scale;
    const float new_max = fmaxf(running_max, score);
    const float correction = expf(running_max - new_max);  // 0 on the first key
    const float weight = expf(score - new_max);
    running_sum = running_sum * correction + weight;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + i * kWarpSize;
      if (d < head_dim) acc[i] = acc[i] * correction + weight * to_f32(v_row[d]);
    }
    running_max = new_max;
  }

  // Merge the warps: rescale each to the global max. A warp that saw no key has max -inf and
  // contributes exp(-inf) = 0 (the global max is finite: every token sees at least key 0).
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + i * kWarpSize;
    if (d < head_dim) acc_s[warp * head_dim + d] = acc[i];
  }
  if (lane == 0) {
    max_s[warp] = running_max;
    sum_s[warp] = running_sum;
  }
  __syncthreads();
  float global_max = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) global_max = fmaxf(global_max, max_s[w]);
  float factor[kWarps];
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    factor[w] = max_s[w] == -INFINITY ? 0.0f : expf(max_s[w] - global_max);
    total += sum_s[w] * factor[w];
  }
  const float inv_total = 1.0f / total;
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += acc_s[w * head_dim + d] * factor[w];
    out[q_off + d] = to_bf16(o * inv_total);
  }
}

}  // namespace

void launch_kv_append(const bf16* k, const bf16* v, bf16* k_cache, bf16* v_cache,
                      const int32_t* slot_mapping, int64_t n_tokens, int64_t kv_dim,
                      cudaStream_t stream) {
  if (n_tokens == 0 || kv_dim == 0) return;
  kv_append_kernel<<<static_cast<unsigned>(n_tokens), 128, 0, stream>>>(k, v, k_cache, v_cache,
                                                                        slot_mapping, kv_dim);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_paged_attention(const bf16* q, const bf16* k_cache, const bf16* v_cache, bf16* out,
                            const PagedAttentionArgs& args, cudaStream_t stream) {
  if (args.n_tokens == 0 || args.n_heads == 0) return;
  const size_t smem = static_cast<size_t>(args.head_dim * (1 + kWarps) + 2 * kWarps) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(args.n_tokens), static_cast<unsigned>(args.n_heads));
  paged_attention_kernel<<<grid, kThreads, smem, stream>>>(q, k_cache, v_cache, out, args);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

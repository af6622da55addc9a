// MoE kernels: router softmax + top-k, and the row gather / scatter-add that move tokens to and
// from expert batches. Semantics of backend/cpu/router.cc and CpuBackend::{gather,scatter_add}_rows.
// Launchers enqueue on `stream`; never block or allocate.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

inline constexpr int64_t kMaxTopK = 32;

// logits [n, n_experts] fp32 → ids [n, top_k] int32 (descending by probability; ties: lower id
// first), weights [n, top_k] fp32 (softmax probabilities, renormalized to sum 1 if `normalize`).
// Requires 0 < top_k ≤ min(n_experts, kMaxTopK). One warp per token.
// A row with NaN logits gets id -1 where no expert ranks (the CPU op aborts instead).
void launch_router_topk(const float* logits, int64_t n, int64_t n_experts, int64_t top_k,
                        bool normalize, int32_t* ids, float* weights, cudaStream_t stream);

// out[i, :] = src[rows[i], :] for i < n; rows of d bf16 elements. Also the embedding lookup.
void launch_gather_rows(const __nv_bfloat16* src, const int32_t* rows, __nv_bfloat16* out,
                        int64_t n, int64_t d, cudaStream_t stream);

// out[rows[i], :] += scale[i] * src[i, :] for i < n (fp32 math, one bf16 rounding).
// NOTE: requires rows[0..n) distinct within one call (plain read-modify-write, no atomics).
// The callers guarantee it: ExpertWorker scatters one expert's batch, where each token row
// appears once; M2nExpertLink scatters one peer's partial rows, one per token.
void launch_scatter_add_rows(const __nv_bfloat16* src, const int32_t* rows, const float* scale,
                             __nv_bfloat16* out, int64_t n, int64_t d, cudaStream_t stream);

}  // namespace msi::cuda

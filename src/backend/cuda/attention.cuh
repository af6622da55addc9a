// Paged KV cache kernels: append and causal GQA attention, for prefill and decode alike, with
// the semantics of backend/cpu/attention.cc. bf16 storage, fp32 math.
// Launchers enqueue on `stream`; never block or allocate.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

// Rows of k, v [n_tokens, kv_dim] go to k_cache, v_cache [n_slots, kv_dim] at slot_mapping[t]
// (slot = block * block_size + offset). A negative slot skips the token (the CPU op aborts on
// it; here it is treated as padding).
void launch_kv_append(const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* k_cache,
                      __nv_bfloat16* v_cache, const int32_t* slot_mapping, int64_t n_tokens,
                      int64_t kv_dim, cudaStream_t stream);

struct PagedAttentionArgs {
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // n_heads % n_kv_heads == 0; head h reads kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;    // ≤ kMaxHeadDim
  int64_t block_size = 0;
  int64_t max_blocks_per_seq = 0;
  float scale = 1.0f;
  const int32_t* token_seq = nullptr;     // [n_tokens]
  const int32_t* token_pos = nullptr;     // [n_tokens]; attends to keys 0..pos
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
};

inline constexpr int64_t kMaxHeadDim = 256;

// q, out: [n_tokens, n_heads, head_dim]; caches: [n_slots, n_kv_heads, head_dim].
// Keys beyond max_blocks_per_seq * block_size are not read (the CPU op aborts there).
void launch_paged_attention(const __nv_bfloat16* q, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, __nv_bfloat16* out,
                            const PagedAttentionArgs& args, cudaStream_t stream);

}  // namespace msi::cuda

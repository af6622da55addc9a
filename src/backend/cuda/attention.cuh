// Paged KV cache kernels: append and causal GQA attention, for prefill and decode alike, with
// the semantics of backend/cpu/attention.cc. bf16 storage, fp32 math.
// Launchers enqueue on `stream`; never block or allocate.
//
// Attention is split-KV (flash decoding): one block per (query token, kv head, ≤16 of the query
// heads sharing it, split of the token's context), so a group's KV is read once; the QKᵀ and PV
// products run on tensor cores with the group's query heads as the MMA rows (padded to 16).
// Each token's context is cut into ≤ n_splits equal chunks *on the device* (from token_pos), so
// the grid depends only on host-known sizes and the launch can be captured in a CUDA graph.
// Splits of one token are merged by a second kernel through a caller-owned fp32 workspace; a
// token whose context needs one chunk is written directly.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
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
  int64_t head_dim = 0;    // ≤ kMaxHeadDim, a multiple of 8 (16-byte rows)
  int64_t block_size = 0;
  int64_t max_blocks_per_seq = 0;
  int64_t n_splits = 1;    // from plan_paged_attention_splits
  float scale = 1.0f;
  const int32_t* token_seq = nullptr;     // [n_tokens]
  const int32_t* token_pos = nullptr;     // [n_tokens]; attends to keys 0..pos
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
};

inline constexpr int64_t kMaxHeadDim = 256;

// A fixed split workspace is enough: the planner lowers n_splits to fit it, and one split
// (large batches, prefill) needs none.
inline constexpr size_t kPagedAttentionWorkspaceBytes = size_t{64} << 20;

// Bytes of workspace `n_splits` splits use: partial outputs [n_tokens, n_heads, n_splits,
// head_dim] fp32, then their log2-sum-exp [n_tokens, n_heads, n_splits] fp32. 0 for one split.
size_t paged_attention_workspace_bytes(const PagedAttentionArgs& args, int64_t n_splits);

// Host-side plan: how many splits give enough blocks to fill `n_sms` multiprocessors, given the
// longest possible context (max_blocks_per_seq * block_size), without exceeding workspace_bytes.
// Pure function of its arguments; never touches the device.
int64_t plan_paged_attention_splits(const PagedAttentionArgs& args, int n_sms,
                                    size_t workspace_bytes);

// q, out: [n_tokens, n_heads, head_dim]; caches: [n_slots, n_kv_heads, head_dim]; q, the caches
// and out 16-byte aligned. workspace: ≥ paged_attention_workspace_bytes(args, args.n_splits),
// device memory the call may overwrite (unused when n_splits == 1).
// Keys beyond max_blocks_per_seq * block_size are not read (the CPU op aborts there).
void launch_paged_attention(const __nv_bfloat16* q, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, __nv_bfloat16* out,
                            const PagedAttentionArgs& args, void* workspace,
                            cudaStream_t stream);

}  // namespace msi::cuda

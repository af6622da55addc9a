// CPU reference kernels: fp32 compute, plain and deterministic. They are the oracle every other
// backend is tested against. Framework-free: raw pointers, sizes, row-major contiguous layouts.
// None of them allocate except where noted; none block. Thread-safety: pure functions of their
// arguments (BLAS may use its own threads).
#pragma once

#include <cstdint>

namespace msi::cpu {

// y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n] when bias != nullptr). BLAS sgemm.
void linear(const float* x, const float* w, const float* bias, float* y, int64_t m, int64_t n,
            int64_t k);

// y[n, d] = x[n, d] / sqrt(mean(x²) + eps) * w[d]. x == y allowed.
void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps);

// residual[n, d] += x[n, d]; then y = rms_norm(residual). The fused pre-norm step.
void add_rms_norm(float* residual, const float* x, const float* w, float* y, int64_t n, int64_t d,
                  float eps);

// In-place rotary embedding, "rotate_half" (GPT-NeoX / HF Llama) layout: for each head the pair
// (x[i], x[i + head_dim/2]) is rotated by angle pos * theta^(-2i/head_dim), i < head_dim/2.
// x: [n_tokens, n_heads, head_dim], positions: [n_tokens].
void rope(float* x, const int32_t* positions, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
          double theta);

// Writes k, v rows of each token into the paged cache at slot_mapping[t]
// (slot = block * block_size + offset). k, v: [n_tokens, n_kv_heads * head_dim];
// k_cache, v_cache: [n_slots, n_kv_heads * head_dim].
void kv_append(const float* k, const float* v, float* k_cache, float* v_cache,
               const int32_t* slot_mapping, int64_t n_tokens, int64_t kv_dim);

// Causal GQA attention over a paged KV cache, for prefill and decode alike.
struct PagedAttentionParams {
  int64_t n_tokens = 0;     // query tokens in the batch
  int64_t n_heads = 0;      // query heads
  int64_t n_kv_heads = 0;   // n_heads % n_kv_heads == 0; head h uses kv head h / (n_heads/n_kv_heads)
  int64_t head_dim = 0;
  int64_t block_size = 0;   // tokens per KV block
  float scale = 1.0f;       // usually 1/sqrt(head_dim)
  const int32_t* token_seq = nullptr;     // [n_tokens] row of block_tables for this token
  const int32_t* token_pos = nullptr;     // [n_tokens] position; attends to keys 0..pos inclusive
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq] block ids
  int64_t max_blocks_per_seq = 0;
};
// q: [n_tokens, n_heads, head_dim]; out: [n_tokens, n_heads, head_dim];
// caches: [n_blocks * block_size, n_kv_heads, head_dim]. Keys must already be appended.
// Softmax in fp32 with max subtraction.
void paged_attention(const float* q, const float* k_cache, const float* v_cache, float* out,
                     const PagedAttentionParams& p);

// Router: softmax over logits[n, n_experts], take the top_k largest probabilities per row
// (ties: lower expert id first), optionally renormalize them to sum to 1.
// ids: [n, top_k] (descending by weight), weights: [n, top_k].
void router_topk(const float* logits, int64_t n, int64_t n_experts, int64_t top_k, bool normalize,
                 int32_t* ids, float* weights);

// out[n] = silu(gate[n]) * up[n], silu(x) = x / (1 + exp(-x)).
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// One SwiGLU MLP on m rows: y[m, hidden] = down(silu(gate(x)) * up(x)).
// gate_w, up_w: [inter, hidden]; down_w: [hidden, inter]. scratch: 2 * m * inter floats.
void swiglu_mlp(const float* x, const float* gate_w, const float* up_w, const float* down_w,
                float* y, int64_t m, int64_t hidden, int64_t inter, float* scratch);

// Embedding lookup: out[n, d] = table[ids[n], :]. Ids must be in range (caller validates).
void embedding(const float* table, const int32_t* ids, float* out, int64_t n, int64_t d);

// out[n] = 1 / (1 + exp(-x[n])).
void sigmoid(const float* x, float* out, int64_t n);

}  // namespace msi::cpu

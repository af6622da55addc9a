// Paged KV cache: append and causal GQA attention over it, for prefill and decode alike.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {
namespace {

// Scores are computed a chunk of keys at a time into a stack buffer, with an online softmax
// across chunks, so any context length runs without allocating.
constexpr int64_t kScoreChunk = 128;

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

// One query head against keys 0..n_keys-1 of its sequence. o: [head_dim], written.
void attend_one_head(const float* q_head, const float* k_cache, const float* v_cache, float* o,
                     const int32_t* block_table, int64_t n_keys, int64_t kv_head,
                     const PagedAttentionParams& p) {
  const int64_t head_dim = p.head_dim;
  const int64_t row_stride = p.n_kv_heads * head_dim;  // floats per cache slot
  std::fill(o, o + head_dim, 0.0f);
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;  // sum of exp(score - running_max) over keys seen so far

  float scores[kScoreChunk];
  int64_t offsets[kScoreChunk];  // float offset of (slot, kv_head) in the caches
  for (int64_t j0 = 0; j0 < n_keys; j0 += kScoreChunk) {
    const int64_t n_chunk = std::min(kScoreChunk, n_keys - j0);
    float chunk_max = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < n_chunk; ++c) {
      const int64_t j = j0 + c;
      const int32_t block = block_table[j / p.block_size];
      MSI_CHECK(block >= 0, "paged_attention: key {} maps to block {}", j, block);
      const int64_t slot = static_cast<int64_t>(block) * p.block_size + j % p.block_size;
      offsets[c] = slot * row_stride + kv_head * head_dim;
      scores[c] = dot(q_head, k_cache + offsets[c], head_dim) * p.scale;
      chunk_max = std::fmax(chunk_max, scores[c]);
    }
    // Rescale what has been accumulated so every exp below is taken against the same max.
    if (chunk_max > running_max) {
      const float correction = std::exp(running_max - chunk_max);  // 0 on the first chunk
      running_sum *= correction;
      for (int64_t d = 0; d < head_dim; ++d) o[d] *= correction;
      running_max = chunk_max;
    }
    for (int64_t c = 0; c < n_chunk; ++c) {
      const float weight = std::exp(scores[c] - running_max);
      running_sum += weight;
      const float* v_row = v_cache + offsets[c];
      for (int64_t d = 0; d < head_dim; ++d) o[d] += weight * v_row[d];
    }
  }
  const float inv_sum = 1.0f / running_sum;
  for (int64_t d = 0; d < head_dim; ++d) o[d] *= inv_sum;
}

}  // namespace

void kv_append(const float* k, const float* v, float* k_cache, float* v_cache,
               const int32_t* slot_mapping, int64_t n_tokens, int64_t kv_dim) {
  MSI_CHECK(n_tokens >= 0 && kv_dim > 0, "kv_append: n_tokens={} kv_dim={}", n_tokens, kv_dim);
  const size_t row_bytes = static_cast<size_t>(kv_dim) * sizeof(float);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    MSI_CHECK(slot >= 0, "kv_append: slot_mapping[{}]={}", t, slot);
    std::memcpy(k_cache + slot * kv_dim, k + t * kv_dim, row_bytes);
    std::memcpy(v_cache + slot * kv_dim, v + t * kv_dim, row_bytes);
  }
}

void paged_attention(const float* q, const float* k_cache, const float* v_cache, float* out,
                     const PagedAttentionParams& p) {
  MSI_CHECK(p.n_tokens >= 0 && p.head_dim > 0 && p.block_size > 0,
            "paged_attention: n_tokens={} head_dim={} block_size={}", p.n_tokens, p.head_dim,
            p.block_size);
  MSI_CHECK(p.n_kv_heads > 0 && p.n_heads > 0 && p.n_heads % p.n_kv_heads == 0,
            "paged_attention: n_heads={} n_kv_heads={}", p.n_heads, p.n_kv_heads);
  MSI_CHECK(p.n_tokens == 0 || (p.token_seq != nullptr && p.token_pos != nullptr &&
                                p.block_tables != nullptr && p.max_blocks_per_seq > 0),
            "paged_attention: missing batch metadata");
  const int64_t group = p.n_heads / p.n_kv_heads;  // query heads per kv head

  for (int64_t t = 0; t < p.n_tokens; ++t) {
    const int32_t seq = p.token_seq[t];
    const int32_t pos = p.token_pos[t];
    MSI_CHECK(seq >= 0, "paged_attention: token_seq[{}]={}", t, seq);
    // Causal: the token at position pos sees keys 0..pos, its own included.
    const int64_t n_keys = static_cast<int64_t>(pos) + 1;
    MSI_CHECK(pos >= 0 && n_keys <= p.max_blocks_per_seq * p.block_size,
              "paged_attention: token {} at position {} exceeds {} blocks of {}", t, pos,
              p.max_blocks_per_seq, p.block_size);
    const int32_t* block_table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const int64_t offset = (t * p.n_heads + h) * p.head_dim;
      attend_one_head(q + offset, k_cache, v_cache, out + offset, block_table, n_keys, h / group,
                      p);
    }
  }
}

}  // namespace msi::cpu

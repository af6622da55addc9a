// MoE router: softmax over expert logits, top-k, optional renormalization (Mixtral, Qwen-MoE).
#include <cmath>
#include <limits>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace msi::cpu {
namespace {

// True when expert a (probability pa) ranks before expert b: larger probability first, and on a
// tie the lower id.
bool ranks_before(float pa, int32_t a, float pb, int32_t b) {
  return pa > pb || (pa == pb && a < b);
}

}  // namespace

void router_topk(const float* logits, int64_t n, int64_t n_experts, int64_t top_k, bool normalize,
                 int32_t* ids, float* weights) {
  MSI_CHECK(n >= 0 && n_experts > 0, "router_topk: n={} n_experts={}", n, n_experts);
  MSI_CHECK(top_k > 0 && top_k <= n_experts, "router_topk: top_k={} n_experts={}", top_k,
            n_experts);

  for (int64_t r = 0; r < n; ++r) {
    const float* row = logits + r * n_experts;  // [n_experts]
    int32_t* row_ids = ids + r * top_k;         // [top_k]
    float* row_weights = weights + r * top_k;   // [top_k]

    float max_logit = -std::numeric_limits<float>::infinity();
    for (int64_t e = 0; e < n_experts; ++e) max_logit = std::fmax(max_logit, row[e]);
    float sum = 0.0f;
    for (int64_t e = 0; e < n_experts; ++e) sum += std::exp(row[e] - max_logit);
    // Rank by the rounded fp32 probabilities, not the logits: two logits that differ by less
    // than an ulp of the probability tie in HF's topk and must tie here too.
    auto prob = [&](int64_t e) { return std::exp(row[e] - max_logit) / sum; };

    // Selection without a scratch array: pick k is the best expert ranking strictly after pick
    // k-1. O(top_k * n_experts), which is nothing next to the expert MLPs.
    for (int64_t k = 0; k < top_k; ++k) {
      int32_t best = -1;
      float best_p = 0.0f;
      for (int64_t e = 0; e < n_experts; ++e) {
        const float p = prob(e);
        const auto id = static_cast<int32_t>(e);
        if (k > 0 && !ranks_before(row_weights[k - 1], row_ids[k - 1], p, id)) continue;
        if (best < 0 || ranks_before(p, id, best_p, best)) {
          best = id;
          best_p = p;
        }
      }
      MSI_CHECK(best >= 0, "router_topk: no expert left for pick {} (NaN logits?)", k);
      row_ids[k] = best;
      row_weights[k] = best_p;
    }

    if (normalize) {
      float selected = 0.0f;
      for (int64_t k = 0; k < top_k; ++k) selected += row_weights[k];
      for (int64_t k = 0; k < top_k; ++k) row_weights[k] /= selected;
    }
  }
}

}  // namespace msi::cpu

// CpuBackend::sample_rows: the reference sampler, a plain transcription of Backend::sample_rows
// (the GPU kernel is tested against it). Same semantics as sched/sampling.cc, except that the
// draw walks the kept candidates in ascending id order so it does not depend on any sort.
//
// Precision: scaled = logits / t and w = exp(scaled − max) in fp32; every mass (total, top-p
// prefix, draw) is accumulated in fp64.
// Out-of-contract values never abort (the device cannot either; the host validates requests):
// NaN logits are −inf and −0 is +0; temperature ≤ 0 or NaN is greedy; top_k < 1, ≥ vocab or
// NaN keeps all, a fractional top_k is truncated; top_p NaN or ≥ 1 is off, ≤ 0 keeps one token;
// u NaN or < 0 is 0, u ≥ 1 draws the last kept token. A token at the maximum gets weight 1
// exactly, so +inf logits share the mass and a row of only −inf/NaN is uniform.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace msi {
namespace {

struct Candidate {
  float value;  // logits / temperature
  int32_t id;
  float weight;  // exp(value − max), filled once the candidates are known
};

// Descending value; on equal values the lower id first (greedy, top-k and top-p agree).
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

float scaled_value(float x, float temperature) {
  if (std::isnan(x)) return -std::numeric_limits<float>::infinity();
  const float v = x / temperature;
  return v == 0.0f ? 0.0f : v;
}

// scratch: [vocab] candidates, reused across rows and calls.
int32_t sample_row(const float* logits, int64_t vocab, const float* params,
                   std::vector<Candidate>& scratch) {
  const float temperature = params[0], top_p = params[1], top_k = params[2], u = params[3];
  if (!(temperature > 0.0f)) {  // greedy: the rank-first logit
    int64_t best = 0;
    float best_value = scaled_value(logits[0], 1.0f);
    for (int64_t i = 1; i < vocab; ++i) {
      const float v = scaled_value(logits[i], 1.0f);
      if (v > best_value) best = i, best_value = v;  // strict: ties keep the lowest id
    }
    return static_cast<int32_t>(best);
  }

  scratch.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    scratch[i] = {scaled_value(logits[i], temperature), static_cast<int32_t>(i), 0.0f};
  }
  const auto begin = scratch.begin();
  int64_t n_kept = vocab;  // candidates live in scratch[0, n_kept)
  if (top_k >= 1.0f && top_k < static_cast<float>(vocab)) {
    n_kept = static_cast<int64_t>(top_k);
    std::nth_element(begin, begin + n_kept, scratch.end(), ranks_before);
  }
  std::sort(begin, begin + n_kept, ranks_before);

  // Softmax weights over the candidates; the maximum is the rank-first one.
  const float max_value = scratch[0].value;
  double mass = 0.0;
  for (int64_t i = 0; i < n_kept; ++i) {
    Candidate& c = scratch[i];
    c.weight = c.value == max_value ? 1.0f : std::exp(c.value - max_value);
    mass += c.weight;
  }

  if (top_p < 1.0f) {
    // The smallest prefix in rank order whose mass reaches top_p of the candidates'; at least one.
    const double target = static_cast<double>(top_p) * mass;
    double prefix = 0.0;
    int64_t n_prefix = 0;
    while (n_prefix < n_kept) {
      prefix += scratch[n_prefix].weight;
      ++n_prefix;
      if (prefix >= target) break;
    }
    n_kept = n_prefix;
    mass = prefix;
  }

  // Inverse CDF over the kept candidates in id order; scaling u by their mass renormalizes.
  std::sort(begin, begin + n_kept,
            [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  const double draw = (u >= 0.0f ? static_cast<double>(u) : 0.0) * mass;
  double cumulative = 0.0;
  for (int64_t i = 0; i < n_kept; ++i) {
    cumulative += scratch[i].weight;
    if (draw < cumulative) return scratch[i].id;
  }
  // Only reachable when rounding (or u ≥ 1) leaves the draw at the very top of the mass: the
  // last kept candidate with nonzero weight.
  for (int64_t i = n_kept - 1; i > 0; --i) {
    if (scratch[i].weight > 0.0f) return scratch[i].id;
  }
  return scratch[0].id;
}

}  // namespace

void CpuBackend::sample_rows(const Tensor& logits, const Tensor& params, const Tensor& ids) {
  MSI_CHECK(logits.dtype == DType::kF32, "cpu: sample_rows logits must be F32, is {}",
            dtype_name(logits.dtype));
  MSI_CHECK(params.dtype == DType::kF32, "cpu: sample_rows params must be F32, is {}",
            dtype_name(params.dtype));
  MSI_CHECK(ids.dtype == DType::kI32, "cpu: sample_rows ids must be I32, is {}",
            dtype_name(ids.dtype));
  MSI_CHECK(logits.ndim == 2, "cpu: sample_rows logits must be [n, vocab], has {} dims", logits.ndim);
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  MSI_CHECK(vocab > 0 && vocab <= std::numeric_limits<int32_t>::max(), "cpu: sample_rows vocab={}",
            vocab);
  MSI_CHECK(params.ndim == 2 && params.dim(1) == 4 && params.dim(0) >= n,
            "cpu: sample_rows params must be [>= {}, 4] (temperature, top_p, top_k, u)", n);
  MSI_CHECK(ids.numel() >= n, "cpu: sample_rows: {} ids for {} rows", ids.numel(), n);
  // NOTE: grows only when the vocab does (the first call in practice), like backend/cpu/moe.cc.
  thread_local std::vector<Candidate> scratch;
  for (int64_t i = 0; i < n; ++i) {
    ids.as<int32_t>()[i] =
        sample_row(logits.as<float>() + i * vocab, vocab, params.as<float>() + 4 * i, scratch);
  }
}

}  // namespace msi

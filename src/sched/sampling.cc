// The CPU sampler: greedy, or temperature -> top-k -> softmax -> top-p -> one seeded draw.
#include "sched/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace msi {
namespace {

// Descending by value; on equal values the lower token id first, so every cut (top-k, top-p)
// and greedy agree on which of tied tokens survives.
bool ranks_before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

int32_t argmax(const float* logits, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: ties keep the lowest id
  }
  return static_cast<int32_t>(best);
}

// A uniform double in [0, 1) from the top 53 bits. Spelled out because
// std::uniform_real_distribution's algorithm is implementation-defined, and a seeded request
// should draw the same tokens whatever standard library the engine was built with.
double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Sampler::Sampler(const SamplingParams& params, uint64_t fallback_seed)
    : params_(params), rng_(params.has_seed ? params.seed : fallback_seed) {
  // Requests are validated (with a Status) where they enter the engine; here it is a bug.
  MSI_CHECK(params_.temperature >= 0.0f, "Sampler: temperature={}", params_.temperature);
  MSI_CHECK(params_.top_p > 0.0f && params_.top_p <= 1.0f, "Sampler: top_p={}", params_.top_p);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  MSI_CHECK(vocab > 0, "Sampler::sample: vocab={}", vocab);
  if (params_.temperature == 0.0f) return argmax(logits, vocab);

  // scratch_: [vocab] (value, token id); resize allocates only when the vocab grows.
  scratch_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    scratch_[i] = {logits[i] / params_.temperature, static_cast<int32_t>(i)};
  }
  auto begin = scratch_.begin();
  int64_t n_kept = vocab;  // candidates live in scratch_[0, n_kept)

  if (params_.top_k > 0 && params_.top_k < vocab) {
    n_kept = params_.top_k;
    std::nth_element(begin, begin + n_kept, scratch_.end(), ranks_before);
  }
  // Sorted order is needed only for the top-p prefix; a plain draw works on any order.
  const bool use_top_p = params_.top_p < 1.0f;
  if (use_top_p) std::sort(begin, begin + n_kept, ranks_before);

  // Softmax over the candidates, in place; the max is subtracted so exp cannot overflow.
  float max_value = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n_kept; ++i) max_value = std::fmax(max_value, scratch_[i].first);
  MSI_CHECK(std::isfinite(max_value), "Sampler::sample: max scaled logit {}", max_value);
  double total = 0.0;
  for (int64_t i = 0; i < n_kept; ++i) {
    scratch_[i].first = std::exp(scratch_[i].first - max_value);
    total += scratch_[i].first;
  }

  if (use_top_p) {
    // Smallest prefix (by descending probability) whose mass reaches top_p; at least one token.
    const double target = static_cast<double>(params_.top_p) * total;
    double prefix = 0.0;
    int64_t n_prefix = 0;
    while (n_prefix < n_kept) {
      prefix += scratch_[n_prefix].first;
      ++n_prefix;
      if (prefix >= target) break;
    }
    n_kept = n_prefix;
    total = prefix;
  }

  // Inverse-CDF draw over the unnormalized weights: scaling u by the kept mass renormalizes.
  const double u = draw_uniform() * total;
  double cumulative = 0.0;
  for (int64_t i = 0; i < n_kept; ++i) {
    cumulative += scratch_[i].first;
    if (u < cumulative) return scratch_[i].second;
  }
  // Only reachable when rounding leaves u at the very top of the mass: take the last candidate
  // with nonzero weight.
  for (int64_t i = n_kept - 1; i > 0; --i) {
    if (scratch_[i].first > 0.0f) return scratch_[i].second;
  }
  return scratch_[0].second;
}

double Sampler::draw_uniform() { return uniform_unit(rng_); }

}  // namespace msi

// Sampling parameters and the CPU sampler: greedy, temperature, top-k, top-p, seeded.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace msi {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax; ties go to the lowest id)
  float top_p = 1.0f;        // (0, 1]
  int64_t top_k = -1;        // -1 or 0: disabled
  uint64_t seed = 0;         // with has_seed: a per-request generator seeded with it
  bool has_seed = false;
  int64_t max_tokens = 16;
  bool ignore_eos = false;
};

// Per-request sampling state (the generator). Deterministic given the seed.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params, uint64_t fallback_seed);
  // Picks a token from logits[vocab]. Does not modify logits. `scratch` is reused between calls.
  int32_t sample(const float* logits, int64_t vocab);
  // The uniform draw sample() makes for a non-greedy request, for sampling elsewhere (the
  // device, Backend::sample_rows): each sampled token consumes one draw either way.
  double draw_uniform();
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace msi

// CpuBackend::sample_rows, the oracle the GPU sampler is tested against: greedy and top_k = 1
// against argmax, tie-breaking at the top-k cut, the exact top-p prefix on hand-built rows, the
// id-ordered inverse CDF (u = 0 and u → 1), empirical frequencies against probabilities computed
// here in double, temperature scaling, NaN logits, guards around ids, and bad shapes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"

namespace msi {
namespace {

constexpr float kAll = -1.0f;                       // top_k: no cut
constexpr float kBelowOne = 0x1.fffffep-1f;         // the largest float below 1
constexpr int32_t kGuardId = -7777;
constexpr int64_t kGuard = 16;

struct Params {
  float temperature = 1.0f, top_p = 1.0f, top_k = kAll, u = 0.0f;
};

// Samples each row of logits [n, vocab]; ids sit between guards that must stay untouched.
std::vector<int32_t> sample(const std::vector<float>& logits, int64_t vocab,
                            const std::vector<Params>& params) {
  CpuBackend cpu;
  const int64_t n = static_cast<int64_t>(params.size());
  EXPECT_EQ(static_cast<int64_t>(logits.size()), n * vocab);
  std::vector<float> p;
  for (const Params& q : params) p.insert(p.end(), {q.temperature, q.top_p, q.top_k, q.u});
  std::vector<int32_t> ids(static_cast<size_t>(n + 2 * kGuard), kGuardId);
  cpu.sample_rows(Tensor::view(const_cast<float*>(logits.data()), DType::kF32, {n, vocab}),
                  Tensor::view(p.data(), DType::kF32, {n, 4}),
                  Tensor::view(ids.data() + kGuard, DType::kI32, {n}));
  for (int64_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(ids[i], kGuardId) << "guard before ids overwritten";
    EXPECT_EQ(ids[ids.size() - 1 - i], kGuardId) << "guard after ids overwritten";
  }
  return {ids.begin() + kGuard, ids.end() - kGuard};
}

int32_t sample_one(const std::vector<float>& row, Params p) {
  return sample(row, static_cast<int64_t>(row.size()), {p})[0];
}

// Logits whose softmax (temperature 1) is `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double q : probs) v.push_back(static_cast<float>(std::log(q)));
  return v;
}

// The kept, renormalized distribution computed independently in double, with the contract's
// ranking (value desc, id asc), top-k and top-p prefix.
std::vector<double> expected_probs(const std::vector<float>& row, float temperature, float top_p,
                                   int64_t top_k) {
  const int64_t vocab = static_cast<int64_t>(row.size());
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> v(row.size());
  for (size_t i = 0; i < row.size(); ++i) v[i] = static_cast<double>(row[i] / temperature);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  const int64_t k = top_k >= 1 && top_k < vocab ? top_k : vocab;
  double total = 0.0;
  for (int64_t r = 0; r < k; ++r) total += std::exp(v[order[r]] - v[order[0]]);
  std::vector<double> probs(row.size(), 0.0);
  double prefix = 0.0;
  for (int64_t r = 0; r < k; ++r) {
    const double w = std::exp(v[order[r]] - v[order[0]]);
    probs[order[r]] = w;
    prefix += w;
    if (top_p < 1.0f && prefix >= top_p * total) break;
  }
  for (double& q : probs) q /= prefix;
  return probs;
}

TEST(BackendCpuSample, GreedyEqualsArgmax) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const int64_t n = 32, vocab = 1000;
  std::vector<float> logits(static_cast<size_t>(n * vocab));
  for (float& x : logits) x = std::round(dist(rng) * 4.0f) / 4.0f;  // coarse: ties at the max
  std::vector<Params> params(static_cast<size_t>(n));
  for (Params& p : params) p = {0.0f, 0.5f, 7.0f, 0.9f};  // greedy ignores the other knobs
  const std::vector<int32_t> ids = sample(logits, vocab, params);

  CpuBackend cpu;
  std::vector<int32_t> want(static_cast<size_t>(n));
  cpu.argmax_rows(Tensor::view(logits.data(), DType::kF32, {n, vocab}),
                  Tensor::view(want.data(), DType::kI32, {n}));
  EXPECT_EQ(ids, want);
}

TEST(BackendCpuSample, TopKOneEqualsGreedy) {
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> row(5000);
  for (int trial = 0; trial < 20; ++trial) {
    for (float& x : row) x = dist(rng);
    const int32_t greedy = sample_one(row, {0.0f, 1.0f, kAll, 0.0f});
    for (float u : {0.0f, 0.3f, kBelowOne}) {
      EXPECT_EQ(sample_one(row, {0.7f, 1.0f, 1.0f, u}), greedy);
      EXPECT_EQ(sample_one(row, {1.3f, 0.9f, 1.0f, u}), greedy);
    }
  }
}

TEST(BackendCpuSample, TopKTiesAtTheCutGoToLowerIds) {
  // Ranked: id 5 (4), then 1, 2, 3, 6 tie at 3. top_k = 3 keeps 5, 1, 2 — never 3 or 6.
  const std::vector<float> row = {1, 3, 3, 3, 0, 4, 3};
  std::map<int32_t, int> seen;
  for (int i = 0; i < 1000; ++i) ++seen[sample_one(row, {1.0f, 1.0f, 3.0f, (i + 0.5f) / 1000})];
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen.count(5) && seen.count(1) && seen.count(2));
  // Equal weights tie only within the group: u = 0 is the lowest kept id, u → 1 the highest.
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 3.0f, 0.0f}), 1);
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 3.0f, kBelowOne}), 5);
  // top_k = 2: 5 and 1 only.
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 2.0f, 0.0f}), 1);
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 2.0f, kBelowOne}), 5);
}

TEST(BackendCpuSample, TopPKeepsTheDocumentedPrefix) {
  // Rank order: id 0 (.5), id 2 (.25), id 3 (.15), id 1 (.1).
  const std::vector<float> row = logits_of({0.5, 0.1, 0.25, 0.15});
  struct Case {
    float top_p;
    std::vector<int32_t> kept;  // ascending ids
  };
  for (const Case& c : {Case{0.3f, {0}}, Case{0.45f, {0}}, Case{0.7f, {0, 2}}, Case{0.8f, {0, 2, 3}},
                        Case{0.95f, {0, 1, 2, 3}}, Case{0.0f, {0}}}) {
    std::vector<int32_t> drawn;
    for (int i = 0; i < 2000; ++i) drawn.push_back(sample_one(row, {1.0f, c.top_p, kAll, (i + 0.5f) / 2000}));
    std::sort(drawn.begin(), drawn.end());
    drawn.erase(std::unique(drawn.begin(), drawn.end()), drawn.end());
    EXPECT_EQ(drawn, c.kept) << "top_p=" << c.top_p;
    // The inverse CDF runs in id order: u = 0 is the lowest kept id, u → 1 the highest.
    EXPECT_EQ(sample_one(row, {1.0f, c.top_p, kAll, 0.0f}), c.kept.front());
    EXPECT_EQ(sample_one(row, {1.0f, c.top_p, kAll, kBelowOne}), c.kept.back());
  }
  // top_p = 0.7 keeps {0: .5, 2: .25}: id 0 up to u = 2/3, then id 2.
  EXPECT_EQ(sample_one(row, {1.0f, 0.7f, kAll, 0.666f}), 0);
  EXPECT_EQ(sample_one(row, {1.0f, 0.7f, kAll, 0.667f}), 2);
  // Combined with top_k = 2 (ids 0 and 2, mass .75): top_p = 0.6 needs .45 → 0 alone suffices.
  EXPECT_EQ(sample_one(row, {1.0f, 0.6f, 2.0f, kBelowOne}), 0);
  EXPECT_EQ(sample_one(row, {1.0f, 0.7f, 2.0f, kBelowOne}), 2);
}

TEST(BackendCpuSample, UEndpointsPickFirstAndLastKeptInIdOrder) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(300);
  for (float& x : row) x = dist(rng);
  const std::vector<double> probs = expected_probs(row, 1.0f, 1.0f, 50);
  int32_t first = -1, last = -1;
  for (int32_t i = 0; i < 300; ++i) {
    if (probs[i] > 0) last = i, first = first < 0 ? i : first;
  }
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 50.0f, 0.0f}), first);
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 50.0f, kBelowOne}), last);
  // Out of range u: clamped, never a crash.
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 50.0f, -0.5f}), first);
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 50.0f, 1.0f}), last);
  EXPECT_EQ(sample_one(row, {1.0f, 1.0f, 50.0f, std::numeric_limits<float>::quiet_NaN()}), first);
}

TEST(BackendCpuSample, FrequenciesMatchTheKeptRenormalizedProbabilities) {
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 1.5f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const int64_t vocab = 64;
  const int n_draws = 20000;
  std::vector<float> row(static_cast<size_t>(vocab));
  for (float& x : row) x = dist(rng);
  struct Case {
    float temperature, top_p;
    int64_t top_k;
  };
  for (const Case& c : {Case{1.0f, 1.0f, -1}, Case{0.5f, 1.0f, 10}, Case{2.0f, 0.9f, -1},
                        Case{1.0f, 0.5f, 20}, Case{0.8f, 0.95f, 5}}) {
    std::vector<float> logits;
    std::vector<Params> params;
    for (int i = 0; i < n_draws; ++i) {
      logits.insert(logits.end(), row.begin(), row.end());
      params.push_back({c.temperature, c.top_p, static_cast<float>(c.top_k), unit(rng)});
    }
    const std::vector<int32_t> ids = sample(logits, vocab, params);
    std::vector<double> freq(static_cast<size_t>(vocab), 0.0);
    for (int32_t id : ids) freq[id] += 1.0 / n_draws;
    const std::vector<double> want = expected_probs(row, c.temperature, c.top_p, c.top_k);
    double max_diff = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (want[i] == 0.0) {
        EXPECT_EQ(freq[i], 0.0) << "dropped token " << i << " was drawn";
      }
      max_diff = std::max(max_diff, std::abs(freq[i] - want[i]));
    }
    EXPECT_LT(max_diff, 0.01) << "t=" << c.temperature << " top_p=" << c.top_p << " top_k=" << c.top_k;
  }
}

TEST(BackendCpuSample, TemperatureScalesTheLogits) {
  // Two tokens with logits 0 and 1: p(0) = 1 / (1 + e^(1/t)). The draw is id 0 iff u < p(0).
  const std::vector<float> row = {0.0f, 1.0f};
  for (float t : {0.25f, 0.5f, 1.0f, 2.0f, 4.0f}) {
    const double p0 = 1.0 / (1.0 + std::exp(1.0 / t));
    EXPECT_EQ(sample_one(row, {t, 1.0f, kAll, static_cast<float>(p0 - 1e-4)}), 0) << t;
    EXPECT_EQ(sample_one(row, {t, 1.0f, kAll, static_cast<float>(p0 + 1e-4)}), 1) << t;
  }
}

TEST(BackendCpuSample, NanLogitsAreMinusInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> row = {nan, 1.0f, nan, 2.0f, nan};
  EXPECT_EQ(sample_one(row, {0.0f, 1.0f, kAll, 0.0f}), 3);  // greedy skips NaN (argmax_rows: 0)
  for (int i = 0; i < 100; ++i) {
    const int32_t id = sample_one(row, {1.0f, 1.0f, kAll, i / 100.0f});
    EXPECT_TRUE(id == 1 || id == 3) << id;
  }
  // All NaN: every token ties at −inf and gets weight 1; greedy is id 0.
  const std::vector<float> all_nan(4, nan);
  EXPECT_EQ(sample_one(all_nan, {0.0f, 1.0f, kAll, 0.5f}), 0);
  EXPECT_EQ(sample_one(all_nan, {1.0f, 1.0f, kAll, 0.6f}), 2);
  // +inf logits share the mass; everything finite gets none.
  const std::vector<float> infs = {1.0f, inf, 3.0f, inf};
  EXPECT_EQ(sample_one(infs, {1.0f, 1.0f, kAll, 0.2f}), 1);
  EXPECT_EQ(sample_one(infs, {1.0f, 1.0f, kAll, 0.7f}), 3);
}

TEST(BackendCpuSample, EveryRowUsesItsOwnParams) {
  const std::vector<float> row = logits_of({0.5, 0.1, 0.25, 0.15});
  std::vector<float> logits;
  for (int i = 0; i < 4; ++i) logits.insert(logits.end(), row.begin(), row.end());
  const std::vector<int32_t> ids = sample(
      logits, 4, {{0.0f, 1.0f, kAll, 0.9f}, {1.0f, 1.0f, kAll, 0.0f}, {1.0f, 0.7f, kAll, kBelowOne},
                  {1.0f, 1.0f, 2.0f, kBelowOne}});
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 0, 2, 2}));
}

TEST(BackendCpuSampleDeathTest, BadShapesAbort) {
  CpuBackend cpu;
  std::vector<float> logits(2 * 8, 0.0f), params(2 * 4, 1.0f), params3(2 * 3, 1.0f);
  std::vector<int32_t> ids(2);
  const Tensor l = Tensor::view(logits.data(), DType::kF32, {2, 8});
  const Tensor p = Tensor::view(params.data(), DType::kF32, {2, 4});
  const Tensor i = Tensor::view(ids.data(), DType::kI32, {2});
  EXPECT_DEATH(cpu.sample_rows(l, Tensor::view(params3.data(), DType::kF32, {2, 3}), i),
               "params must be");
  EXPECT_DEATH(cpu.sample_rows(l, Tensor::view(params.data(), DType::kF32, {1, 4}), i),
               "params must be");
  EXPECT_DEATH(cpu.sample_rows(l, p, Tensor::view(ids.data(), DType::kI32, {1})), "1 ids for 2 rows");
  EXPECT_DEATH(cpu.sample_rows(l, p, Tensor::view(ids.data(), DType::kF32, {2})), "ids must be I32");
  EXPECT_DEATH(cpu.sample_rows(Tensor::view(logits.data(), DType::kI32, {2, 8}), p, i),
               "logits must be F32");
  EXPECT_DEATH(cpu.sample_rows(l, Tensor::view(params.data(), DType::kBF16, {2, 4}), i),
               "params must be F32");
  EXPECT_DEATH(cpu.sample_rows(Tensor::view(logits.data(), DType::kF32, {16}), p, i),
               "must be \\[n, vocab\\]");
}

}  // namespace
}  // namespace msi

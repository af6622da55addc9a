// Sampler: greedy, seeded determinism, top-k / top-p cuts, and the empirical distribution.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "sched/sampling.h"

// Counts global allocations so a test can assert that steady-state sampling allocates nothing.
// Every non-aligned form is replaced so that new and delete always pair malloc with free (the
// aligned forms keep their default pairing).
namespace {
std::atomic<int64_t> g_n_allocs{0};

void* counted_malloc(std::size_t size) noexcept {
  g_n_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

// noinline: once inlined, GCC pairs the malloc/free inside with new/delete and warns
// (-Wmismatched-new-delete) although replacing both together is well-formed.
[[gnu::noinline]] void* operator new(std::size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return operator new(size); }
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace msi {
namespace {

std::vector<float> random_logits(uint32_t seed, int64_t vocab, float lo = -3.0f, float hi = 3.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(vocab));
  for (float& x : v) x = dist(rng);
  return v;
}

int32_t argmax_ref(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// softmax(logits / temperature) in double.
std::vector<double> softmax_ref(const std::vector<float>& logits, double temperature) {
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    sum += (p[i] = std::exp((logits[i] - max_logit) / temperature));
  }
  for (double& x : p) x /= sum;
  return p;
}

// Empirical frequencies of n_draws samples.
std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits,
                                int64_t n_draws) {
  std::vector<double> freq(logits.size(), 0.0);
  const int64_t vocab = static_cast<int64_t>(logits.size());
  for (int64_t i = 0; i < n_draws; ++i) {
    const int32_t token = sampler.sample(logits.data(), vocab);
    EXPECT_GE(token, 0);
    EXPECT_LT(token, vocab);
    freq[token] += 1.0 / static_cast<double>(n_draws);
  }
  return freq;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

SamplingParams make_params(float temperature, int64_t top_k = -1, float top_p = 1.0f,
                           uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.seed = seed;
  p.has_seed = true;
  return p;
}

TEST(Sampler, GreedyPicksArgmaxAndLeavesLogitsAlone) {
  for (int64_t vocab : {1, 7, 1000}) {
    const auto logits = random_logits(static_cast<uint32_t>(vocab), vocab);
    const auto before = logits;
    Sampler sampler(make_params(0.0f), 0);
    EXPECT_EQ(sampler.sample(logits.data(), vocab), argmax_ref(logits));
    EXPECT_EQ(logits, before);
  }
}

TEST(Sampler, GreedyTiesGoToTheLowestId) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 2.0f};
  Sampler sampler(make_params(0.0f), 0);
  EXPECT_EQ(sampler.sample(logits.data(), 5), 1);
}

TEST(Sampler, SameSeedSameDraws) {
  const auto logits = random_logits(1, 50, -1.0f, 1.0f);
  const auto params = make_params(1.0f, -1, 0.9f, /*seed=*/42);
  Sampler a(params, 0), b(params, 999);  // the fallback seed is ignored when has_seed
  Sampler other(make_params(1.0f, -1, 0.9f, /*seed=*/43), 0);
  int n_differ = 0;
  for (int i = 0; i < 100; ++i) {
    const int32_t ta = a.sample(logits.data(), 50);
    EXPECT_EQ(ta, b.sample(logits.data(), 50));
    n_differ += ta != other.sample(logits.data(), 50);
  }
  EXPECT_GT(n_differ, 0) << "a different seed should give a different sequence";
}

TEST(Sampler, FallbackSeedIsUsedWithoutARequestSeed) {
  const auto logits = random_logits(2, 50, -1.0f, 1.0f);
  SamplingParams unseeded = make_params(1.0f);
  unseeded.has_seed = false;
  Sampler from_fallback(unseeded, /*fallback_seed=*/7);
  Sampler from_seed(make_params(1.0f, -1, 1.0f, /*seed=*/7), 0);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(from_fallback.sample(logits.data(), 50), from_seed.sample(logits.data(), 50));
  }
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
  auto logits = random_logits(3, 200);
  logits[17] = logits[argmax_ref(logits)];  // a tie with the max; the lower id must win
  const int32_t want = argmax_ref(logits);
  for (float temperature : {0.3f, 1.0f, 2.0f, 100.0f}) {
    Sampler sampler(make_params(temperature, /*top_k=*/1), 5);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(sampler.sample(logits.data(), 200), want);
  }
}

TEST(Sampler, TinyTopPIsGreedy) {
  const auto logits = random_logits(4, 300);
  const int32_t want = argmax_ref(logits);
  for (float temperature : {0.5f, 1.0f, 5.0f}) {
    Sampler sampler(make_params(temperature, -1, /*top_p=*/1e-6f), 6);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(sampler.sample(logits.data(), 300), want);
  }
}

TEST(Sampler, TopKSamplesOnlyTheKLargest) {
  const int64_t vocab = 100, k = 5;
  const auto logits = random_logits(5, vocab, -0.5f, 0.5f);  // flat: the cut does the work
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<bool> in_top_k(vocab, false);
  for (int64_t i = 0; i < k; ++i) in_top_k[order[i]] = true;

  Sampler sampler(make_params(2.0f, k), 0);
  std::vector<int> seen(vocab, 0);
  for (int i = 0; i < 2000; ++i) {
    const int32_t token = sampler.sample(logits.data(), vocab);
    ASSERT_TRUE(in_top_k[token]) << "token " << token << " is outside the top " << k;
    ++seen[token];
  }
  for (int64_t i = 0; i < k; ++i) EXPECT_GT(seen[order[i]], 0) << "top-k token never drawn";
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
  const auto logits = random_logits(6, 10, -1.5f, 1.5f);
  const int64_t n_draws = 200000;  // a frequency's std dev is <= 0.0012
  for (float temperature : {1.0f, 0.5f}) {
    SCOPED_TRACE(testing::Message() << "temperature=" << temperature);
    Sampler sampler(make_params(temperature), 11);
    const auto freq = frequencies(sampler, logits, n_draws);
    EXPECT_LT(max_abs_diff(freq, softmax_ref(logits, temperature)), 0.006);
  }
}

TEST(Sampler, TopKAndTopPRenormalizeTheSurvivors) {
  // Logits with a known order: token i has logit -0.4 * i, shuffled over the ids.
  const int64_t vocab = 12;
  std::vector<int32_t> perm(vocab);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
  std::vector<float> logits(vocab);
  for (int64_t rank = 0; rank < vocab; ++rank) logits[perm[rank]] = -0.4f * rank;
  const auto probs = softmax_ref(logits, 1.0);

  // The expected distribution: the first n_keep ranks, renormalized.
  auto survivors = [&](int64_t n_keep) {
    std::vector<double> want(vocab, 0.0);
    double mass = 0.0;
    for (int64_t rank = 0; rank < n_keep; ++rank) mass += probs[perm[rank]];
    for (int64_t rank = 0; rank < n_keep; ++rank) want[perm[rank]] = probs[perm[rank]] / mass;
    return want;
  };
  // The smallest prefix reaching top_p.
  const float top_p = 0.8f;
  int64_t n_top_p = 0;
  for (double cum = 0.0; cum < top_p;) cum += probs[perm[n_top_p++]];
  ASSERT_GT(n_top_p, 1);
  ASSERT_LT(n_top_p, vocab);

  const int64_t n_draws = 100000;
  {
    Sampler sampler(make_params(1.0f, /*top_k=*/4), 21);
    EXPECT_LT(max_abs_diff(frequencies(sampler, logits, n_draws), survivors(4)), 0.008);
  }
  {
    Sampler sampler(make_params(1.0f, -1, top_p), 22);
    EXPECT_LT(max_abs_diff(frequencies(sampler, logits, n_draws), survivors(n_top_p)), 0.008);
  }
  {
    // top-k first, then top-p over the renormalized top-k (here it cuts to fewer than k).
    const int64_t k = 6;
    double top_k_mass = 0.0;
    for (int64_t rank = 0; rank < k; ++rank) top_k_mass += probs[perm[rank]];
    int64_t n_both = 0;
    for (double cum = 0.0; cum < 0.6;) cum += probs[perm[n_both++]] / top_k_mass;
    ASSERT_LT(n_both, k);
    Sampler sampler(make_params(1.0f, k, 0.6f), 23);
    EXPECT_LT(max_abs_diff(frequencies(sampler, logits, n_draws), survivors(n_both)), 0.008);
  }
}

TEST(Sampler, NoAllocationAfterTheFirstCall) {
  const int64_t vocab = 5000;
  const auto logits = random_logits(8, vocab);
  Sampler sampler(make_params(0.8f, 50, 0.9f), 0);
  Sampler plain(make_params(1.0f), 0);
  sampler.sample(logits.data(), vocab);  // may size the scratch
  plain.sample(logits.data(), vocab);
  const int64_t before = g_n_allocs.load();
  for (int i = 0; i < 10; ++i) {
    sampler.sample(logits.data(), vocab);
    plain.sample(logits.data(), vocab);
  }
  EXPECT_EQ(g_n_allocs.load(), before);
}

}  // namespace
}  // namespace msi

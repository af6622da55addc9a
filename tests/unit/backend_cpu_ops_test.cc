// CPU reference kernels against naive double-precision references on fresh random inputs.
// Outputs sit between guard regions, so an out-of-bounds write fails the test too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/ops.h"

namespace msi::cpu {
namespace {

// fp32 kernels against double references: relative L2 error and a max-abs bound per op.
constexpr double kRelL2 = 1e-5;

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Integer-valued floats: products and sums of these stay exact in fp32.
std::vector<float> random_ints(std::mt19937& rng, int64_t n, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

// An output buffer between kGuard sentinel floats on each side. NaN-filled by default, so an
// element the kernel never writes fails the comparison.
class Guarded {
 public:
  explicit Guarded(int64_t n, float fill = std::numeric_limits<float>::quiet_NaN())
      : n_(n), buf_(static_cast<size_t>(n + 2 * kGuard), fill) {
    std::fill(buf_.begin(), buf_.begin() + kGuard, kSentinel);
    std::fill(buf_.end() - kGuard, buf_.end(), kSentinel);
  }
  float* data() { return buf_.data() + kGuard; }
  const float* data() const { return buf_.data() + kGuard; }
  int64_t size() const { return n_; }
  float operator[](int64_t i) const { return data()[i]; }
  bool guards_intact() const {
    for (int64_t i = 0; i < kGuard; ++i) {
      if (buf_[i] != kSentinel || buf_[buf_.size() - 1 - i] != kSentinel) return false;
    }
    return true;
  }

 private:
  static constexpr int64_t kGuard = 64;
  static constexpr float kSentinel = -12345.678f;
  int64_t n_;
  std::vector<float> buf_;
};

struct ErrorStats {
  double rel_l2 = 0.0;
  double max_abs = 0.0;
  bool has_nan = false;
};

ErrorStats compare(const float* got, const std::vector<double>& want) {
  ErrorStats s;
  double diff_sq = 0.0, ref_sq = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(got[i])) s.has_nan = true;
    const double d = static_cast<double>(got[i]) - want[i];
    diff_sq += d * d;
    ref_sq += want[i] * want[i];
    s.max_abs = std::max(s.max_abs, std::abs(d));
  }
  s.rel_l2 = std::sqrt(diff_sq / std::max(ref_sq, 1e-300));
  return s;
}

void expect_close(const Guarded& got, const std::vector<double>& want, double max_abs,
                  double rel_l2 = kRelL2) {
  ASSERT_EQ(got.size(), static_cast<int64_t>(want.size()));
  const ErrorStats s = compare(got.data(), want);
  EXPECT_FALSE(s.has_nan);
  EXPECT_LE(s.rel_l2, rel_l2);
  EXPECT_LE(s.max_abs, max_abs);
  EXPECT_TRUE(got.guards_intact()) << "write outside the output";
}

// ---- linear ----------------------------------------------------------------------------------

struct LinearShape {
  int64_t m, n, k;
};

TEST(CpuLinear, MatchesDoubleReference) {
  std::mt19937 rng(1);
  for (const LinearShape sh :
       {LinearShape{1, 7, 5}, LinearShape{3, 17, 33}, LinearShape{17, 31, 65},
        LinearShape{5, 130, 129}, LinearShape{1, 1, 1}}) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(testing::Message()
                   << "m=" << sh.m << " n=" << sh.n << " k=" << sh.k << " bias=" << with_bias);
      const auto x = random_floats(rng, sh.m * sh.k);              // [m, k]
      const auto w = random_floats(rng, sh.n * sh.k);              // [n, k]
      const auto b = random_floats(rng, sh.n);                     // [n]
      std::vector<double> want(static_cast<size_t>(sh.m * sh.n));  // [m, n]
      for (int64_t r = 0; r < sh.m; ++r) {
        for (int64_t c = 0; c < sh.n; ++c) {
          double acc = with_bias ? b[c] : 0.0;
          for (int64_t i = 0; i < sh.k; ++i) acc += double(x[r * sh.k + i]) * w[c * sh.k + i];
          want[r * sh.n + c] = acc;
        }
      }
      Guarded y(sh.m * sh.n);
      linear(x.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), sh.m, sh.n, sh.k);
      expect_close(y, want, 1e-5);
    }
  }
}

// ---- rms_norm / add_rms_norm -----------------------------------------------------------------

std::vector<double> rms_norm_ref(const std::vector<float>& x, const std::vector<float>& w,
                                 int64_t n, int64_t d, double eps) {
  std::vector<double> y(static_cast<size_t>(n * d));
  for (int64_t r = 0; r < n; ++r) {
    double sum_sq = 0.0;
    for (int64_t i = 0; i < d; ++i) sum_sq += double(x[r * d + i]) * x[r * d + i];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / double(d) + eps);
    for (int64_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * inv_rms * w[i];
  }
  return y;
}

TEST(CpuRmsNorm, MatchesDoubleReference) {
  std::mt19937 rng(2);
  for (auto [n, d] : {std::pair<int64_t, int64_t>{1, 8}, {3, 17}, {17, 129}, {2, 1000}}) {
    for (auto [eps, amplitude] : {std::pair{1e-6f, 3.0f}, {1e-5f, 3.0f}, {1e-5f, 1e-3f}}) {
      SCOPED_TRACE(testing::Message()
                   << "n=" << n << " d=" << d << " eps=" << eps << " amplitude=" << amplitude);
      // Rows far from unit RMS so the norm must actually divide; at amplitude 1e-3, mean(x²) is
      // below eps, so where eps enters matters.
      const auto x = random_floats(rng, n * d, -amplitude, amplitude);
      const auto w = random_floats(rng, d, 0.5f, 1.5f);
      const auto want = rms_norm_ref(x, w, n, d, eps);

      Guarded y(n * d);
      rms_norm(x.data(), w.data(), y.data(), n, d, eps);
      expect_close(y, want, 1e-5);

      // In place (x == y).
      Guarded inplace(n * d);
      std::copy(x.begin(), x.end(), inplace.data());
      rms_norm(inplace.data(), w.data(), inplace.data(), n, d, eps);
      expect_close(inplace, want, 1e-5);
    }
  }
}

TEST(CpuRmsNorm, AddRmsNormUpdatesResidualThenNormalizes) {
  std::mt19937 rng(3);
  for (auto [n, d] : {std::pair<int64_t, int64_t>{1, 8}, {5, 33}, {17, 130}}) {
    SCOPED_TRACE(testing::Message() << "n=" << n << " d=" << d);
    const float eps = 1e-6f;
    const auto residual0 = random_floats(rng, n * d, -2.0f, 2.0f);
    const auto x = random_floats(rng, n * d, -2.0f, 2.0f);
    const auto w = random_floats(rng, d, 0.5f, 1.5f);

    std::vector<double> want_residual(static_cast<size_t>(n * d));
    std::vector<float> summed(static_cast<size_t>(n * d));
    for (int64_t i = 0; i < n * d; ++i) {
      want_residual[i] = double(residual0[i]) + x[i];
      summed[i] = static_cast<float>(want_residual[i]);
    }
    const auto want_y = rms_norm_ref(summed, w, n, d, eps);

    Guarded residual(n * d);
    std::copy(residual0.begin(), residual0.end(), residual.data());
    Guarded y(n * d);
    add_rms_norm(residual.data(), x.data(), w.data(), y.data(), n, d, eps);
    expect_close(residual, want_residual, 1e-6);
    expect_close(y, want_y, 1e-5);
  }
}

// ---- rope ------------------------------------------------------------------------------------

// x: [n_tokens, n_heads, head_dim]. With fp32_angle the angle is rounded as HF rounds it
// (float inv_freq times float position); otherwise everything is double.
std::vector<double> rope_ref(const std::vector<float>& x, const std::vector<int32_t>& positions,
                             int64_t n_heads, int64_t head_dim, double theta, bool fp32_angle) {
  const int64_t half = head_dim / 2;
  std::vector<double> y(x.begin(), x.end());
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * double(i) / double(head_dim));
      const double angle = fp32_angle ? double(float(positions[t]) * float(inv_freq))
                                      : double(positions[t]) * inv_freq;
      for (int64_t h = 0; h < n_heads; ++h) {
        const size_t base = (t * n_heads + h) * head_dim;
        const double x1 = x[base + i], x2 = x[base + i + half];
        y[base + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
        y[base + i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
      }
    }
  }
  return y;
}

struct RopeCase {
  int64_t n_heads, head_dim;
  double theta;
  int32_t max_pos;
};

TEST(CpuRope, MatchesDoubleReferenceAtSmallPositions) {
  // Below a few dozen the fp32 angle is within ~1e-6 of the exact one: compare with pure double.
  std::mt19937 rng(4);
  for (const RopeCase c : {RopeCase{1, 8, 10000.0, 40}, RopeCase{3, 64, 10000.0, 40},
                           RopeCase{5, 128, 1e6, 40}, RopeCase{2, 6, 500.0, 40}}) {
    SCOPED_TRACE(testing::Message() << "n_heads=" << c.n_heads << " head_dim=" << c.head_dim);
    const int64_t n_tokens = 7;
    std::vector<int32_t> positions(n_tokens);
    std::uniform_int_distribution<int32_t> pos_dist(0, c.max_pos);
    for (auto& p : positions) p = pos_dist(rng);
    positions[0] = 0;
    const auto x = random_floats(rng, n_tokens * c.n_heads * c.head_dim);
    const auto want = rope_ref(x, positions, c.n_heads, c.head_dim, c.theta, false);

    Guarded y(static_cast<int64_t>(x.size()));
    std::copy(x.begin(), x.end(), y.data());
    rope(y.data(), positions.data(), n_tokens, c.n_heads, c.head_dim, c.theta);
    expect_close(y, want, 2e-5, 2e-5);
    // Position 0 is the identity.
    for (int64_t i = 0; i < c.n_heads * c.head_dim; ++i) EXPECT_EQ(y[i], x[i]);
  }
}

TEST(CpuRope, RoundsTheAngleLikeTransformersAtLargePositions) {
  // At positions in the thousands HF's fp32 angle differs from the exact one by ~1e-4 rad; the
  // contract is HF's rounding, so the reference rounds the angle the same way (and only that).
  std::mt19937 rng(5);
  for (const RopeCase c : {RopeCase{4, 64, 10000.0, 8191}, RopeCase{2, 128, 1e6, 32767}}) {
    SCOPED_TRACE(testing::Message() << "n_heads=" << c.n_heads << " head_dim=" << c.head_dim);
    const int64_t n_tokens = 9;
    std::vector<int32_t> positions(n_tokens);
    std::uniform_int_distribution<int32_t> pos_dist(c.max_pos / 2, c.max_pos);
    for (auto& p : positions) p = pos_dist(rng);
    const auto x = random_floats(rng, n_tokens * c.n_heads * c.head_dim);
    const auto want = rope_ref(x, positions, c.n_heads, c.head_dim, c.theta, true);

    Guarded y(static_cast<int64_t>(x.size()));
    std::copy(x.begin(), x.end(), y.data());
    rope(y.data(), positions.data(), n_tokens, c.n_heads, c.head_dim, c.theta);
    expect_close(y, want, 2e-5, 2e-5);
  }
}

// ---- kv_append / paged_attention -------------------------------------------------------------

TEST(CpuKvAppend, WritesEachRowToItsSlotOnly) {
  std::mt19937 rng(6);
  const int64_t n_slots = 40, kv_dim = 24, n_tokens = 9;
  std::vector<int32_t> slots(n_slots);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(n_tokens);
  const auto k = random_floats(rng, n_tokens * kv_dim);
  const auto v = random_floats(rng, n_tokens * kv_dim);
  const auto k_cache0 = random_floats(rng, n_slots * kv_dim);
  const auto v_cache0 = random_floats(rng, n_slots * kv_dim);
  Guarded k_cache(n_slots * kv_dim), v_cache(n_slots * kv_dim);
  std::copy(k_cache0.begin(), k_cache0.end(), k_cache.data());
  std::copy(v_cache0.begin(), v_cache0.end(), v_cache.data());

  kv_append(k.data(), v.data(), k_cache.data(), v_cache.data(), slots.data(), n_tokens, kv_dim);

  std::vector<int64_t> token_of_slot(n_slots, -1);
  for (int64_t t = 0; t < n_tokens; ++t) token_of_slot[slots[t]] = t;
  for (int64_t s = 0; s < n_slots; ++s) {
    for (int64_t i = 0; i < kv_dim; ++i) {
      const int64_t t = token_of_slot[s];
      const float want_k = t >= 0 ? k[t * kv_dim + i] : k_cache0[s * kv_dim + i];
      const float want_v = t >= 0 ? v[t * kv_dim + i] : v_cache0[s * kv_dim + i];
      ASSERT_EQ(k_cache[s * kv_dim + i], want_k) << "slot " << s;
      ASSERT_EQ(v_cache[s * kv_dim + i], want_v) << "slot " << s;
    }
  }
  EXPECT_TRUE(k_cache.guards_intact());
  EXPECT_TRUE(v_cache.guards_intact());
}

// One sequence of the batch: its cached context, then the query tokens at q_begin..seq_len-1.
struct SeqSpec {
  int32_t q_begin;  // first position queried in this batch (0: a fresh prefill)
  int32_t seq_len;  // positions 0..seq_len-1 exist once the batch's keys are appended
};

struct AttentionCase {
  int64_t block_size;
  int64_t head_dim;
  float q_scale;  // large values push scores past exp's fp32 range without max subtraction
  std::vector<SeqSpec> seqs;
  // Integer q and k (exact fp32 dot products) with keys growing along the sequence: later score
  // chunks then exceed earlier ones by far more than exp's range, which only a correct online
  // rescale survives, and the scores stay exact.
  bool integer_ramp = false;
};

void run_paged_attention_case(const AttentionCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t n_heads = 8, n_kv_heads = 2;  // GQA group of 4
  const int64_t head_dim = c.head_dim, block_size = c.block_size;
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int64_t n_seqs = static_cast<int64_t>(c.seqs.size());

  // Dense per-sequence K, V: [seq_len, n_kv_heads, head_dim].
  std::vector<std::vector<float>> dense_k, dense_v;
  int64_t max_blocks_per_seq = 0, n_blocks_used = 0;
  for (const SeqSpec& s : c.seqs) {
    if (c.integer_ramp) {
      auto k = random_ints(rng, s.seq_len * kv_dim, -4, 4);
      for (int64_t j = 0; j < s.seq_len; ++j) {
        for (int64_t i = 0; i < kv_dim; ++i) k[j * kv_dim + i] *= static_cast<float>(1 + j / 32);
      }
      dense_k.push_back(std::move(k));
    } else {
      dense_k.push_back(random_floats(rng, s.seq_len * kv_dim));
    }
    dense_v.push_back(random_floats(rng, s.seq_len * kv_dim));
    const int64_t n_blocks = (s.seq_len + block_size - 1) / block_size;
    max_blocks_per_seq = std::max(max_blocks_per_seq, n_blocks + 1);  // + a spare unused entry
    n_blocks_used += n_blocks;
  }

  // A shuffled pool with spare blocks, so sequences are neither contiguous nor in order.
  const int64_t n_pool_blocks = n_blocks_used + 5;
  std::vector<int32_t> pool(n_pool_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<int32_t> block_tables(n_seqs * max_blocks_per_seq, -1);
  int64_t next_block = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t n_blocks = (c.seqs[s].seq_len + block_size - 1) / block_size;
    for (int64_t b = 0; b < n_blocks; ++b) {
      block_tables[s * max_blocks_per_seq + b] = pool[next_block++];
    }
  }
  auto slot_of = [&](int64_t s, int64_t pos) {
    return block_tables[s * max_blocks_per_seq + pos / block_size] * block_size + pos % block_size;
  };

  // NaN-filled caches: reading any slot that was never written poisons the output.
  const int64_t n_slots = n_pool_blocks * block_size;
  Guarded k_cache(n_slots * kv_dim), v_cache(n_slots * kv_dim);

  // Cached context first (an earlier step), one kv_append per sequence.
  for (int64_t s = 0; s < n_seqs; ++s) {
    std::vector<int32_t> slots;
    for (int32_t pos = 0; pos < c.seqs[s].q_begin; ++pos) slots.push_back(slot_of(s, pos));
    kv_append(dense_k[s].data(), dense_v[s].data(), k_cache.data(), v_cache.data(), slots.data(),
              static_cast<int64_t>(slots.size()), kv_dim);
  }

  // This step's tokens, interleaved across sequences so prefill and decode tokens mix.
  std::vector<int32_t> token_seq, token_pos;
  for (bool any = true; any;) {
    any = false;
    for (int64_t s = 0; s < n_seqs; ++s) {
      const int32_t pos = c.seqs[s].q_begin +
                          static_cast<int32_t>(std::count(token_seq.begin(), token_seq.end(), s));
      if (pos < c.seqs[s].seq_len) {
        token_seq.push_back(static_cast<int32_t>(s));
        token_pos.push_back(pos);
        any = true;
      }
    }
  }
  const int64_t n_tokens = static_cast<int64_t>(token_seq.size());
  std::vector<float> k_new, v_new;
  std::vector<int32_t> slot_mapping;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* k_row = dense_k[token_seq[t]].data() + token_pos[t] * kv_dim;
    const float* v_row = dense_v[token_seq[t]].data() + token_pos[t] * kv_dim;
    k_new.insert(k_new.end(), k_row, k_row + kv_dim);
    v_new.insert(v_new.end(), v_row, v_row + kv_dim);
    slot_mapping.push_back(slot_of(token_seq[t], token_pos[t]));
  }
  kv_append(k_new.data(), v_new.data(), k_cache.data(), v_cache.data(), slot_mapping.data(),
            n_tokens, kv_dim);

  const auto q = c.integer_ramp
                     ? random_ints(rng, n_tokens * n_heads * head_dim, -4, 4)
                     : random_floats(rng, n_tokens * n_heads * head_dim, -c.q_scale, c.q_scale);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  // Dense causal GQA attention in double.
  std::vector<double> want(static_cast<size_t>(n_tokens * n_heads * head_dim), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const auto& keys = dense_k[token_seq[t]];
    const auto& values = dense_v[token_seq[t]];
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t kvh = h / (n_heads / n_kv_heads);
      const float* qh = q.data() + (t * n_heads + h) * head_dim;
      std::vector<double> scores(token_pos[t] + 1);
      for (int64_t j = 0; j <= token_pos[t]; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < head_dim; ++d) {
          dot += double(qh[d]) * keys[j * kv_dim + kvh * head_dim + d];
        }
        scores[j] = dot * scale;
      }
      const double max_score = *std::max_element(scores.begin(), scores.end());
      double sum = 0.0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      double* o = want.data() + (t * n_heads + h) * head_dim;
      for (int64_t j = 0; j <= token_pos[t]; ++j) {
        for (int64_t d = 0; d < head_dim; ++d) {
          o[d] += scores[j] / sum * values[j * kv_dim + kvh * head_dim + d];
        }
      }
    }
  }

  PagedAttentionParams p;
  p.n_tokens = n_tokens;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv_heads;
  p.head_dim = head_dim;
  p.block_size = block_size;
  p.scale = scale;
  p.token_seq = token_seq.data();
  p.token_pos = token_pos.data();
  p.block_tables = block_tables.data();
  p.max_blocks_per_seq = max_blocks_per_seq;
  Guarded out(n_tokens * n_heads * head_dim);
  paged_attention(q.data(), k_cache.data(), v_cache.data(), out.data(), p);
  expect_close(out, want, 1e-5);
  EXPECT_TRUE(k_cache.guards_intact());
  EXPECT_TRUE(v_cache.guards_intact());
}

TEST(CpuPagedAttention, MixedPrefillAndDecodeBlockSize4) {
  // A fresh prefill, a chunked prefill continuing a cached prefix, and three decodes (one at
  // position 0, one exactly at a block boundary, one past the score chunk of 128 keys).
  run_paged_attention_case({4, 16, 1.0f, {{0, 7}, {9, 14}, {0, 1}, {8, 9}, {300, 301}, {21, 22}}},
                           7);
}

TEST(CpuPagedAttention, MixedPrefillAndDecodeBlockSize16) {
  run_paged_attention_case({16, 64, 1.0f, {{37, 38}, {0, 19}, {16, 17}, {130, 140}, {5, 6}}}, 8);
}

TEST(CpuPagedAttention, LargeScoresStayFinite) {
  // Scores in the hundreds: exp overflows in fp32 unless the max is subtracted.
  run_paged_attention_case({16, 64, 40.0f, {{0, 5}, {200, 201}}}, 9);
}

TEST(CpuPagedAttention, LaterKeyChunksWithMuchLargerScores) {
  run_paged_attention_case({16, 16, 1.0f, {{400, 401}, {250, 260}}, /*integer_ramp=*/true}, 10);
}

// ---- router_topk -----------------------------------------------------------------------------

TEST(CpuRouterTopk, MatchesDoubleReference) {
  std::mt19937 rng(10);
  for (auto [n_experts, top_k] : {std::pair<int64_t, int64_t>{8, 2}, {60, 4}, {128, 8}, {5, 5}}) {
    for (bool normalize : {false, true}) {
      SCOPED_TRACE(testing::Message() << "n_experts=" << n_experts << " top_k=" << top_k
                                      << " normalize=" << normalize);
      const int64_t n = 17;
      const auto logits = random_floats(rng, n * n_experts, -4.0f, 4.0f);
      std::vector<int32_t> ids(static_cast<size_t>(n * top_k), -1);
      Guarded weights(n * top_k);
      router_topk(logits.data(), n, n_experts, top_k, normalize, ids.data(), weights.data());

      std::vector<double> want_weights;
      for (int64_t r = 0; r < n; ++r) {
        const float* row = logits.data() + r * n_experts;
        const double max_logit = *std::max_element(row, row + n_experts);
        std::vector<double> probs(static_cast<size_t>(n_experts));
        double sum = 0.0;
        for (int64_t e = 0; e < n_experts; ++e) sum += (probs[e] = std::exp(row[e] - max_logit));
        for (double& pr : probs) pr /= sum;
        std::vector<int32_t> order(static_cast<size_t>(n_experts));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
        double selected = 0.0;
        for (int64_t k = 0; k < top_k; ++k) selected += probs[order[k]];
        for (int64_t k = 0; k < top_k; ++k) {
          EXPECT_EQ(ids[r * top_k + k], order[k]) << "row " << r << " pick " << k;
          want_weights.push_back(probs[order[k]] / (normalize ? selected : 1.0));
        }
      }
      expect_close(weights, want_weights, 1e-6);
    }
  }
}

TEST(CpuRouterTopk, TiesGoToTheLowerExpertId) {
  // Experts 1, 2 and 4 tie for the top; 0 and 3 tie below them.
  const std::vector<float> logits = {0.5f, 3.0f, 3.0f, 0.5f, 3.0f};
  std::vector<int32_t> ids(4);
  std::vector<float> weights(4);
  router_topk(logits.data(), 1, 5, 4, /*normalize=*/false, ids.data(), weights.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 4, 0}));
  EXPECT_EQ(weights[0], weights[1]);
  EXPECT_EQ(weights[1], weights[2]);
  EXPECT_GT(weights[2], weights[3]);

  router_topk(logits.data(), 1, 5, 2, /*normalize=*/true, ids.data(), weights.data());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_FLOAT_EQ(weights[0], 0.5f);
  EXPECT_FLOAT_EQ(weights[1], 0.5f);
}

// ---- element-wise: swiglu, sigmoid -----------------------------------------------------------

double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }

TEST(CpuActivation, SwigluMatchesDoubleReference) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 3, 17, 1001}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    // Wide range: saturated silu on both sides (exp(-g) overflows for g < -88).
    auto gate = random_floats(rng, n, -30.0f, 30.0f);
    if (n > 2) gate[0] = -100.0f, gate[1] = 100.0f;
    const auto up = random_floats(rng, n, -2.0f, 2.0f);
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) want[i] = silu_ref(gate[i]) * up[i];
    Guarded out(n);
    swiglu(gate.data(), up.data(), out.data(), n);
    expect_close(out, want, 5e-5);  // |out| reaches ~60, where an fp32 ulp is 4e-6
  }
}

TEST(CpuActivation, SigmoidMatchesDoubleReference) {
  std::mt19937 rng(12);
  for (int64_t n : {1, 3, 17, 1001}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    auto x = random_floats(rng, n, -20.0f, 20.0f);
    if (n > 2) x[0] = -100.0f, x[1] = 100.0f;
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) want[i] = 1.0 / (1.0 + std::exp(-double(x[i])));
    Guarded out(n);
    sigmoid(x.data(), out.data(), n);
    expect_close(out, want, 1e-6);
  }
}

// ---- swiglu_mlp ------------------------------------------------------------------------------

TEST(CpuSwigluMlp, MatchesDoubleReference) {
  std::mt19937 rng(13);
  for (auto [m, hidden, inter] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 16, 24}, {3, 33, 70}, {17, 45, 29}}) {
    SCOPED_TRACE(testing::Message() << "m=" << m << " hidden=" << hidden << " inter=" << inter);
    const auto x = random_floats(rng, m * hidden);
    const auto gate_w = random_floats(rng, inter * hidden, -0.5f, 0.5f);  // [inter, hidden]
    const auto up_w = random_floats(rng, inter * hidden, -0.5f, 0.5f);    // [inter, hidden]
    const auto down_w = random_floats(rng, hidden * inter, -0.5f, 0.5f);  // [hidden, inter]

    std::vector<double> want(static_cast<size_t>(m * hidden), 0.0);
    for (int64_t r = 0; r < m; ++r) {
      std::vector<double> act(static_cast<size_t>(inter));
      for (int64_t j = 0; j < inter; ++j) {
        double g = 0.0, u = 0.0;
        for (int64_t i = 0; i < hidden; ++i) {
          g += double(x[r * hidden + i]) * gate_w[j * hidden + i];
          u += double(x[r * hidden + i]) * up_w[j * hidden + i];
        }
        act[j] = silu_ref(g) * u;
      }
      for (int64_t c = 0; c < hidden; ++c) {
        for (int64_t j = 0; j < inter; ++j) want[r * hidden + c] += act[j] * down_w[c * inter + j];
      }
    }
    Guarded scratch(2 * m * inter);  // exactly the documented size: overruns hit the guards
    Guarded y(m * hidden);
    swiglu_mlp(x.data(), gate_w.data(), up_w.data(), down_w.data(), y.data(), m, hidden, inter,
               scratch.data());
    expect_close(y, want, 1e-5);
    EXPECT_TRUE(scratch.guards_intact());
  }
}

// ---- embedding -------------------------------------------------------------------------------

TEST(CpuEmbedding, GathersRows) {
  std::mt19937 rng(14);
  const int64_t vocab = 50, d = 19, n = 13;
  const auto table = random_floats(rng, vocab * d);
  std::vector<int32_t> ids(n);
  std::uniform_int_distribution<int32_t> id_dist(0, vocab - 1);
  for (auto& id : ids) id = id_dist(rng);
  ids[1] = ids[0];  // a repeated id
  ids[2] = vocab - 1;
  Guarded out(n * d);
  embedding(table.data(), ids.data(), out.data(), n, d);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) ASSERT_EQ(out[r * d + i], table[ids[r] * d + i]);
  }
  EXPECT_TRUE(out.guards_intact());
}

}  // namespace
}  // namespace msi::cpu

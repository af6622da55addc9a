// CpuBackend's MoE ops (moe_align, moe_gate_up, moe_down, moe_combine) against naive
// double-precision references: the grouping order, every layout field, the grouped expert MLPs
// and the whole chain, which must equal Σ_j gate_j · SwiGLU_{expert_j}(x) per token.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/registry.h"

namespace msi {
namespace {

struct Routing {
  int64_t n = 0, top_k = 0, n_experts = 0, n_slots = 0;
  std::vector<int32_t> ids;      // [n, top_k]
  std::vector<float> weights;    // [n, top_k]
  std::vector<int32_t> slot_of;  // [n_experts]
};

// The layout the CPU backend fills, sized for `max_tokens`.
struct HostLayout {
  OwnedTensor slot_of, offsets, row_token, row_gate, token_rows, tiles;
  MoeLayout layout;
};

class CpuMoeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = make_backend("cpu");
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    cpu_ = std::move(b).value();
  }

  // Distinct experts per token (as a router picks), weights in (0, 1).
  Routing random_routing(int64_t n, int64_t top_k, int64_t n_experts) {
    Routing r{n, top_k, n_experts, n_experts, {}, {}, {}};
    std::vector<int32_t> perm(static_cast<size_t>(n_experts));
    std::iota(perm.begin(), perm.end(), 0);
    std::uniform_real_distribution<float> w(0.05f, 1.0f);
    for (int64_t t = 0; t < n; ++t) {
      std::shuffle(perm.begin(), perm.end(), rng_);
      for (int64_t j = 0; j < top_k; ++j) {
        r.ids.push_back(perm[static_cast<size_t>(j)]);
        r.weights.push_back(w(rng_));
      }
    }
    r.slot_of.resize(static_cast<size_t>(n_experts));
    std::iota(r.slot_of.begin(), r.slot_of.end(), 0);
    return r;
  }

  HostLayout make_layout(const Routing& r, int64_t max_tokens) {
    HostLayout h;
    const int64_t max_rows = max_tokens * r.top_k;
    h.slot_of = cpu_->alloc(DType::kI32, {r.n_experts});
    std::copy(r.slot_of.begin(), r.slot_of.end(), h.slot_of.tensor.as<int32_t>());
    h.offsets = cpu_->alloc(DType::kI32, {r.n_slots + 1});
    h.row_token = cpu_->alloc(DType::kI32, {max_rows});
    h.row_gate = cpu_->alloc(DType::kF32, {max_rows});
    h.token_rows = cpu_->alloc(DType::kI32, {max_tokens, r.top_k});
    h.tiles = cpu_->alloc(DType::kI32, {moe_tile_capacity(max_rows, r.n_slots)});
    // Poison every output so a field the op forgot to write shows up.
    std::fill_n(h.offsets.tensor.as<int32_t>(), r.n_slots + 1, -7);
    std::fill_n(h.row_token.tensor.as<int32_t>(), max_rows, -7);
    std::fill_n(h.row_gate.tensor.as<float>(), max_rows, -7.0f);
    std::fill_n(h.token_rows.tensor.as<int32_t>(), max_rows, -7);
    h.layout.n_slots = r.n_slots;
    h.layout.slot_of_expert = h.slot_of.tensor;
    h.layout.expert_offsets = h.offsets.tensor;
    h.layout.row_token = h.row_token.tensor;
    h.layout.row_gate = h.row_gate.tensor;
    h.layout.token_rows = h.token_rows.tensor;
    h.layout.tiles = h.tiles.tensor;
    return h;
  }

  void align(const Routing& r, HostLayout& h) {
    OwnedTensor ids = cpu_->alloc(DType::kI32, {r.n, r.top_k});
    OwnedTensor w = cpu_->alloc(DType::kF32, {r.n, r.top_k});
    std::copy(r.ids.begin(), r.ids.end(), ids.tensor.as<int32_t>());
    std::copy(r.weights.begin(), r.weights.end(), w.tensor.as<float>());
    cpu_->moe_align(ids.tensor, w.tensor, h.layout);
  }

  // The documented order, built the slow way: slot, then token, then j.
  void expect_layout(const Routing& r, const HostLayout& h, const std::string& what) {
    std::vector<int32_t> off(1, 0), row_token, token_rows(r.ids.size(), -1);
    std::vector<float> row_gate;
    for (int64_t s = 0; s < r.n_slots; ++s) {
      for (int64_t t = 0; t < r.n; ++t) {
        for (int64_t j = 0; j < r.top_k; ++j) {
          const size_t p = static_cast<size_t>(t * r.top_k + j);
          const int32_t e = r.ids[p];
          if (e < 0 || r.slot_of[static_cast<size_t>(e)] != s) continue;
          token_rows[p] = static_cast<int32_t>(row_token.size());
          row_token.push_back(static_cast<int32_t>(t));
          row_gate.push_back(r.weights[p]);
        }
      }
      off.push_back(static_cast<int32_t>(row_token.size()));
    }
    const int32_t* got_off = h.offsets.tensor.as<int32_t>();
    for (size_t s = 0; s < off.size(); ++s) ASSERT_EQ(got_off[s], off[s]) << what << " slot " << s;
    for (size_t i = 0; i < row_token.size(); ++i) {
      ASSERT_EQ(h.row_token.tensor.as<int32_t>()[i], row_token[i]) << what << " row " << i;
      ASSERT_EQ(h.row_gate.tensor.as<float>()[i], row_gate[i]) << what << " row " << i;
    }
    for (size_t p = 0; p < token_rows.size(); ++p) {
      ASSERT_EQ(h.token_rows.tensor.as<int32_t>()[p], token_rows[p]) << what << " pair " << p;
    }
  }

  std::vector<float> randn(int64_t n, float stddev) {
    std::normal_distribution<float> d(0.0f, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng_);
    return v;
  }

  OwnedTensor upload(const std::vector<float>& v, std::initializer_list<int64_t> shape) {
    OwnedTensor t = cpu_->alloc(DType::kF32, shape);
    EXPECT_EQ(static_cast<int64_t>(v.size()), t.tensor.numel());
    std::copy(v.begin(), v.end(), t.tensor.as<float>());
    return t;
  }

  std::mt19937 rng_{20251122};
  std::unique_ptr<Backend> cpu_;
};

void expect_near_rel(const float* got, const std::vector<double>& want, const std::string& what) {
  double scale = 1e-30;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << what << " element " << i;
    ASSERT_NEAR(got[i], want[i], 2e-5 * scale) << what << " element " << i;
  }
}

double silu(double g) { return g / (1.0 + std::exp(-g)); }

TEST_F(CpuMoeTest, AlignRandomRouting) {
  for (auto [n, top_k, n_experts] : std::vector<std::array<int64_t, 3>>{{1, 1, 4},
                                                                        {1, 2, 8},
                                                                        {1, 8, 128},
                                                                        {7, 2, 8},
                                                                        {64, 8, 128},
                                                                        {300, 1, 16},
                                                                        {256, 8, 64}}) {
    Routing r = random_routing(n, top_k, n_experts);
    HostLayout h = make_layout(r, n + 3);
    align(r, h);
    expect_layout(r, h, "random n=" + std::to_string(n) + " top_k=" + std::to_string(top_k));
  }
}

TEST_F(CpuMoeTest, AlignSkewedAndEmptyExperts) {
  // Every pair on expert 3 (duplicates within a token included): one slot holds all rows, the
  // others none.
  Routing r = random_routing(50, 2, 8);
  std::fill(r.ids.begin(), r.ids.end(), 3);
  HostLayout h = make_layout(r, 50);
  align(r, h);
  expect_layout(r, h, "skewed");
  EXPECT_EQ(h.offsets.tensor.as<int32_t>()[3], 0);
  EXPECT_EQ(h.offsets.tensor.as<int32_t>()[4], 100);
  // Only even experts used.
  Routing even = random_routing(40, 2, 16);
  for (int32_t& e : even.ids) e = (e / 2) * 2;
  HostLayout he = make_layout(even, 40);
  align(even, he);
  expect_layout(even, he, "even experts");
}

TEST_F(CpuMoeTest, AlignPartialPlacementAndUnroutedTokens) {
  // 12 experts, 5 placed here in a permuted slot order; the rest (and id −1) are skipped.
  Routing r = random_routing(33, 4, 12);
  r.n_slots = 5;
  r.slot_of = {-1, 3, -1, 0, 4, -1, -1, 1, -1, 2, -1, -1};
  r.ids[5] = -1;
  HostLayout h = make_layout(r, 40);
  align(r, h);
  expect_layout(r, h, "partial");
  EXPECT_EQ(h.token_rows.tensor.as<int32_t>()[5], -1);
}

TEST_F(CpuMoeTest, AlignSplitsReplicatedExpertsByToken) {
  // 6 experts on 3 workers {0,1,2}, {0,3,4}, {0,4,5}: expert 0 on all three, expert 4 on workers 1
  // and 2. Token t of expert e belongs to replica t % replicas (ExpertPlacement::route's rule); each
  // worker keeps exactly its pairs, so every pair is grouped exactly once.
  const std::vector<std::vector<int32_t>> held = {{0, 1, 2}, {0, 3, 4}, {0, 4, 5}};
  std::vector<std::vector<int32_t>> replicas(6);  // expert → workers, in worker order
  for (int32_t w = 0; w < 3; ++w) {
    for (int32_t e : held[static_cast<size_t>(w)]) replicas[static_cast<size_t>(e)].push_back(w);
  }
  Routing r = random_routing(37, 2, 6);
  std::vector<int> seen(r.ids.size(), 0);
  for (int32_t w = 0; w < 3; ++w) {
    Routing rw = r;
    rw.n_slots = 3;
    std::fill(rw.slot_of.begin(), rw.slot_of.end(), -1);
    OwnedTensor rep = cpu_->alloc(DType::kI32, {6, 2});
    int32_t* table = rep.tensor.as<int32_t>();
    for (size_t e = 0; e < 6; ++e) {
      table[2 * e] = static_cast<int32_t>(replicas[e].size());
      table[2 * e + 1] = 0;
      for (size_t i = 0; i < replicas[e].size(); ++i) {
        if (replicas[e][i] == w) table[2 * e + 1] = static_cast<int32_t>(i);
      }
    }
    const auto& mine = held[static_cast<size_t>(w)];
    for (size_t s = 0; s < mine.size(); ++s) rw.slot_of[static_cast<size_t>(mine[s])] = static_cast<int32_t>(s);
    HostLayout h = make_layout(rw, 37);
    h.layout.expert_replica = rep.tensor;
    align(rw, h);
    for (size_t p = 0; p < r.ids.size(); ++p) {
      const int32_t row = h.token_rows.tensor.as<int32_t>()[p];
      const int64_t t = static_cast<int64_t>(p) / r.top_k;
      const auto& reps = replicas[static_cast<size_t>(r.ids[p])];
      const bool is_mine = reps[static_cast<size_t>(t) % reps.size()] == w;
      EXPECT_EQ(row >= 0, is_mine) << "worker " << w << " pair " << p << " expert " << r.ids[p];
      if (row >= 0) {
        ++seen[p];
        EXPECT_EQ(h.row_token.tensor.as<int32_t>()[row], t);
      }
    }
  }
  for (size_t p = 0; p < seen.size(); ++p) EXPECT_EQ(seen[p], 1) << "pair " << p;
}

TEST_F(CpuMoeTest, AlignNoTokens) {
  Routing r = random_routing(0, 8, 16);
  HostLayout h = make_layout(r, 4);
  align(r, h);
  for (int64_t s = 0; s <= r.n_slots; ++s) EXPECT_EQ(h.offsets.tensor.as<int32_t>()[s], 0);
}

TEST_F(CpuMoeTest, AlignRejectsBadIds) {
  Routing r = random_routing(2, 2, 4);
  r.ids[1] = 4;
  HostLayout h = make_layout(r, 2);
  EXPECT_DEATH(align(r, h), "expert id 4");
}

// The grouped MLP steps each against a naive double per-row computation, then the whole chain.
TEST_F(CpuMoeTest, GroupedMlpChainMatchesPerTokenExperts) {
  struct Case {
    int64_t n, top_k, n_experts, hidden, inter;
    bool partial, skewed;
  };
  for (const Case& c : std::vector<Case>{{1, 1, 4, 64, 32, false, false},
                                         {1, 8, 16, 96, 48, false, false},
                                         {7, 2, 8, 64, 32, true, false},
                                         {40, 2, 8, 128, 256, false, true},
                                         {64, 8, 32, 64, 48, true, false},
                                         {0, 2, 4, 64, 32, false, false}}) {
    const std::string what = "n=" + std::to_string(c.n) + " top_k=" + std::to_string(c.top_k);
    Routing r = random_routing(c.n, c.top_k, c.n_experts);
    if (c.skewed) {
      for (size_t p = 0; p < r.ids.size(); p += static_cast<size_t>(c.top_k)) r.ids[p] = 1;
    }
    std::vector<int32_t> expert_of_slot;  // slot -> global expert
    if (c.partial) {
      // Every third expert is elsewhere; the rest get slots in reverse order.
      std::fill(r.slot_of.begin(), r.slot_of.end(), -1);
      for (int64_t e = c.n_experts - 1; e >= 0; --e) {
        if (e % 3 == 2) continue;
        r.slot_of[static_cast<size_t>(e)] = static_cast<int32_t>(expert_of_slot.size());
        expert_of_slot.push_back(static_cast<int32_t>(e));
      }
      r.n_slots = static_cast<int64_t>(expert_of_slot.size());
    } else {
      for (int64_t e = 0; e < c.n_experts; ++e) expert_of_slot.push_back(static_cast<int32_t>(e));
    }
    const int64_t S = r.n_slots, H = c.hidden, I = c.inter, R = c.n * c.top_k;
    HostLayout h = make_layout(r, std::max<int64_t>(c.n, 1));
    align(r, h);
    expect_layout(r, h, what);

    const std::vector<float> x = randn(c.n * H, 1.0f);
    const std::vector<float> w13 = randn(S * 2 * I * H, 1.0f / std::sqrt(static_cast<float>(H)));
    const std::vector<float> w2 = randn(S * H * I, 1.0f / std::sqrt(static_cast<float>(I)));
    const std::vector<float> out0 = randn(c.n * H, 1.0f);
    OwnedTensor xt = upload(x, {c.n, H}), w13t = upload(w13, {S, 2 * I, H}),
                w2t = upload(w2, {S, H, I}), out = upload(out0, {c.n, H});
    OwnedTensor act = cpu_->alloc(DType::kF32, {std::max<int64_t>(R, 1), I});
    OwnedTensor y = cpu_->alloc(DType::kF32, {std::max<int64_t>(R, 1), H});
    cpu_->moe_gate_up(xt.tensor, w13t.tensor, h.layout, act.tensor);
    cpu_->moe_down(act.tensor, w2t.tensor, h.layout, y.tensor);
    cpu_->moe_combine(y.tensor, h.layout, out.tensor);

    // Per grouped row: act and y from the row's token and slot.
    const int32_t* off = h.offsets.tensor.as<int32_t>();
    std::vector<double> want_act, want_y;
    for (int64_t s = 0; s < S; ++s) {
      for (int32_t row = off[s]; row < off[s + 1]; ++row) {
        const int64_t t = h.row_token.tensor.as<int32_t>()[row];
        const double gate = h.row_gate.tensor.as<float>()[row];
        std::vector<double> a(static_cast<size_t>(I));
        for (int64_t i = 0; i < I; ++i) {
          double g = 0.0, u = 0.0;
          for (int64_t k = 0; k < H; ++k) {
            g += static_cast<double>(x[t * H + k]) * w13[(s * 2 * I + i) * H + k];
            u += static_cast<double>(x[t * H + k]) * w13[(s * 2 * I + I + i) * H + k];
          }
          a[static_cast<size_t>(i)] = silu(g) * u;
        }
        want_act.insert(want_act.end(), a.begin(), a.end());
        for (int64_t d = 0; d < H; ++d) {
          double acc = 0.0;
          for (int64_t i = 0; i < I; ++i) {
            acc +=
                static_cast<double>(act.tensor.as<float>()[row * I + i]) * w2[(s * H + d) * I + i];
          }
          want_y.push_back(gate * acc);
        }
      }
    }
    expect_near_rel(act.tensor.as<float>(), want_act, what + " act");
    expect_near_rel(y.tensor.as<float>(), want_y, what + " y");

    // The chain per token: out0 + Σ_j gate_j · SwiGLU_{e_j}(x_t) over the experts placed here.
    std::vector<double> want_out(out0.begin(), out0.end());
    for (int64_t t = 0; t < c.n; ++t) {
      for (int64_t j = 0; j < c.top_k; ++j) {
        const int32_t e = r.ids[static_cast<size_t>(t * c.top_k + j)];
        const int32_t s = r.slot_of[static_cast<size_t>(e)];
        if (s < 0) continue;
        const double gate = r.weights[static_cast<size_t>(t * c.top_k + j)];
        std::vector<double> a(static_cast<size_t>(I));
        for (int64_t i = 0; i < I; ++i) {
          double g = 0.0, u = 0.0;
          for (int64_t k = 0; k < H; ++k) {
            g += static_cast<double>(x[t * H + k]) * w13[(s * 2 * I + i) * H + k];
            u += static_cast<double>(x[t * H + k]) * w13[(s * 2 * I + I + i) * H + k];
          }
          a[static_cast<size_t>(i)] = silu(g) * u;
        }
        for (int64_t d = 0; d < H; ++d) {
          double acc = 0.0;
          for (int64_t i = 0; i < I; ++i)
            acc += a[static_cast<size_t>(i)] * w2[(s * H + d) * I + i];
          want_out[static_cast<size_t>(t * H + d)] += gate * acc;
        }
      }
    }
    expect_near_rel(out.tensor.as<float>(), want_out, what + " out");
  }
}

TEST_F(CpuMoeTest, CombineSumsInJOrderAndSkipsUnplacedPairs) {
  Routing r = random_routing(3, 2, 4);
  r.n_slots = 2;
  r.slot_of = {0, -1, 1, -1};
  r.ids = {0, 2, 1, 3, 2, 1};
  HostLayout h = make_layout(r, 3);
  align(r, h);
  // Grouped rows: slot 0: (t0, j0); slot 1: (t0, j1), (t2, j0). Token 1 has none.
  const std::vector<int32_t> want_token_rows = {0, 1, -1, -1, 2, -1};
  for (size_t p = 0; p < 6; ++p)
    EXPECT_EQ(h.token_rows.tensor.as<int32_t>()[p], want_token_rows[p]);
  OwnedTensor y = upload({1.0f, 2.0f, 10.0f, 20.0f, 100.0f, 200.0f}, {3, 2});
  OwnedTensor out = upload({0.5f, 0.5f, 0.25f, 0.25f, 0.0f, 1.0f}, {3, 2});
  cpu_->moe_combine(y.tensor, h.layout, out.tensor);
  const std::vector<float> want = {11.5f, 22.5f, 0.25f, 0.25f, 100.0f, 201.0f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out.tensor.as<float>()[i], want[i]);
}

}  // namespace
}  // namespace msi

// The expert side of a MoE layer on the CPU backend: DispatchPlan (who gets which tokens),
// ExpertWorker::process (batched experts over several sources) and the whole round trip (plan,
// workers, combine, by hand), each against a naive double-precision MoE written out in this file.
// The same round trip through M2NExpertLink and ExpertServer is covered end to end by
// engine_deployment_test.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "model/config.h"
#include "roles/dispatch_plan.h"
#include "roles/expert_placement.h"
#include "roles/expert_worker.h"

namespace msi {
namespace {

// Layers 0 and 2 are MoE, layer 1 dense: checks that the worker indexes weights by layer.
ModelConfig make_config(int64_t hidden, int64_t inter, int64_t n_experts, int64_t top_k) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.moe_intermediate_size = inter;
  c.n_experts = n_experts;
  c.n_experts_per_tok = top_k;
  c.n_layers = 3;
  c.layer_is_moe = {true, false, true};
  return c;
}

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Host copies of every routed expert of every MoE layer, and the naive reference MoE.
struct MoeReference {
  struct Expert {
    std::vector<float> gate, up;  // [inter, hidden]
    std::vector<float> down;      // [hidden, inter]
  };
  ModelConfig config;
  std::vector<std::vector<Expert>> layers;  // [n_layers][n_experts]; empty for dense layers

  MoeReference(const ModelConfig& c, std::mt19937& rng) : config(c), layers(c.n_layers) {
    const auto h = static_cast<size_t>(c.hidden_size),
               i = static_cast<size_t>(c.moe_intermediate_size);
    const float in_scale = 1.0f / std::sqrt(static_cast<float>(h));
    const float out_scale = 1.0f / std::sqrt(static_cast<float>(i));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      if (!c.is_moe_layer(l)) continue;
      for (int64_t e = 0; e < c.n_experts; ++e) {
        layers[static_cast<size_t>(l)].push_back(
            Expert{random_vec(rng, i * h, -in_scale, in_scale),
                   random_vec(rng, i * h, -in_scale, in_scale),
                   random_vec(rng, h * i, -out_scale, out_scale)});
      }
    }
  }

  // y += gate * down(silu(gate_proj x) * up_proj x), in double.
  void add_expert(int layer, int32_t expert, const float* x, double gate, double* y) const {
    const Expert& w = layers[static_cast<size_t>(layer)][static_cast<size_t>(expert)];
    const int64_t h = config.hidden_size, inter = config.moe_intermediate_size;
    std::vector<double> act(static_cast<size_t>(inter));
    for (int64_t r = 0; r < inter; ++r) {
      double g = 0, u = 0;
      for (int64_t c = 0; c < h; ++c) {
        g += static_cast<double>(w.gate[static_cast<size_t>(r * h + c)]) * x[c];
        u += static_cast<double>(w.up[static_cast<size_t>(r * h + c)]) * x[c];
      }
      act[static_cast<size_t>(r)] = g / (1.0 + std::exp(-g)) * u;
    }
    for (int64_t r = 0; r < h; ++r) {
      double s = 0;
      for (int64_t c = 0; c < inter; ++c) {
        s += static_cast<double>(w.down[static_cast<size_t>(r * inter + c)]) *
             act[static_cast<size_t>(c)];
      }
      y[r] += gate * s;
    }
  }

  // Full MoE over global top-k ids: out[n, hidden] = Σ_k gates[t, k] · expert_{ids[t, k]}(x_t).
  std::vector<double> full_moe(int layer, const float* x, const int32_t* ids, const float* gates,
                               int64_t n) const {
    const int64_t h = config.hidden_size, k = config.n_experts_per_tok;
    std::vector<double> y(static_cast<size_t>(n * h), 0.0);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < k; ++j) {
        add_expert(layer, ids[t * k + j], x + t * h, gates[t * k + j], y.data() + t * h);
      }
    }
    return y;
  }

  // The weights of one expert worker holding `experts` (global ids in local order).
  ExpertWeights worker_weights(Backend& backend, const std::vector<int32_t>& experts) const {
    ExpertWeights w;
    w.experts = experts;
    w.layers.resize(layers.size());
    const int64_t h = config.hidden_size, inter = config.moe_intermediate_size;
    for (size_t l = 0; l < layers.size(); ++l) {
      if (layers[l].empty()) continue;
      for (int32_t e : experts) {
        const Expert& src = layers[l][static_cast<size_t>(e)];
        ExpertFfnWeights f;
        f.gate = backend.alloc(DType::kF32, {inter, h});
        f.up = backend.alloc(DType::kF32, {inter, h});
        f.down = backend.alloc(DType::kF32, {h, inter});
        backend.copy_from_host(f.gate.tensor, src.gate.data(), src.gate.size() * sizeof(float));
        backend.copy_from_host(f.up.tensor, src.up.data(), src.up.size() * sizeof(float));
        backend.copy_from_host(f.down.tensor, src.down.data(), src.down.size() * sizeof(float));
        w.layers[l].push_back(std::move(f));
      }
    }
    return w;
  }
};

// [n, top_k] distinct expert ids per token, and gates in (0.05, 1).
void random_routing(std::mt19937& rng, int64_t n, int64_t n_experts, int64_t top_k,
                    std::vector<int32_t>& ids, std::vector<float>& gates) {
  ids.clear();
  std::vector<int32_t> all(static_cast<size_t>(n_experts));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    std::shuffle(all.begin(), all.end(), rng);
    ids.insert(ids.end(), all.begin(), all.begin() + top_k);
  }
  gates = random_vec(rng, static_cast<size_t>(n * top_k), 0.05f, 1.0f);
}

// ---------------------------------------------------------------------------------------------
// DispatchPlan

void check_plan(const DispatchPlan& plan, const ExpertPlacement& placement,
                const std::vector<int32_t>& ids, const std::vector<float>& gates, int64_t n,
                int64_t top_k) {
  ASSERT_EQ(plan.n_dests(), placement.n_workers());
  std::vector<int> seen(static_cast<size_t>(n * top_k), 0);
  for (int64_t d = 0; d < plan.n_dests(); ++d) {
    const DispatchPlan::Dest& dest = plan.dest(d);
    ASSERT_EQ(dest.local_ids.size(), static_cast<size_t>(dest.n_tokens() * top_k));
    ASSERT_EQ(dest.gates.size(), dest.local_ids.size());
    for (int64_t i = 0; i < dest.n_tokens(); ++i) {
      const int32_t t = dest.token_rows[static_cast<size_t>(i)];
      ASSERT_GE(t, 0);
      ASSERT_LT(t, n);
      // Strictly ascending: each token at most once per destination.
      if (i > 0) {
        ASSERT_LT(dest.token_rows[static_cast<size_t>(i - 1)], t);
      }
      int n_here = 0;
      for (int64_t k = 0; k < top_k; ++k) {
        const size_t at = static_cast<size_t>(i * top_k + k);
        const int32_t local = dest.local_ids[at];
        if (local < 0) {
          ASSERT_EQ(local, -1);
          continue;
        }
        ++n_here;
        const int32_t e = ids[static_cast<size_t>(t * top_k + k)];
        ASSERT_LT(local, static_cast<int32_t>(placement.experts_of(d).size()));
        EXPECT_EQ(placement.experts_of(d)[static_cast<size_t>(local)], e);
        EXPECT_EQ(placement.route(e, t), d);
        EXPECT_EQ(dest.gates[at], gates[static_cast<size_t>(t * top_k + k)]);
        ++seen[static_cast<size_t>(t * top_k + k)];
      }
      EXPECT_GT(n_here, 0) << "token " << t << " sent to worker " << d << " for nothing";
    }
  }
  for (size_t p = 0; p < seen.size(); ++p) {
    EXPECT_EQ(seen[p], 1) << "token " << p / static_cast<size_t>(top_k) << " k "
                          << p % static_cast<size_t>(top_k);
  }
}

TEST(DispatchPlanTest, EveryPairOnceWithLocalIdsAndGates) {
  constexpr int64_t kExperts = 8, kMaxTokens = 40;
  std::vector<ExpertPlacement> placements;
  for (int64_t w : {1, 2, 3, 4, 8}) placements.push_back(*ExpertPlacement::contiguous(kExperts, w));
  // Replicas: expert 3 on two workers, expert 7 on all three; local order not sorted.
  placements.push_back(
      *ExpertPlacement::from_worker_lists(kExperts, {{7, 0, 1, 3}, {2, 3, 4, 7}, {5, 7, 6}}));
  // Every expert on both workers.
  placements.push_back(*ExpertPlacement::from_worker_lists(
      kExperts, {{0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1, 0}}));

  std::mt19937 rng(2024);
  std::vector<int32_t> ids;
  std::vector<float> gates;
  for (const ExpertPlacement& placement : placements) {
    for (int64_t top_k : {1, 2, 4}) {
      SCOPED_TRACE(placement.to_json().dump() + " top_k " + std::to_string(top_k));
      DispatchPlan plan(placement, kMaxTokens, top_k);
      // Reuse one plan over several batches: nothing may leak from the previous one.
      for (int64_t n : {kMaxTokens, int64_t{0}, int64_t{1}, int64_t{13}, kMaxTokens}) {
        random_routing(rng, n, kExperts, top_k, ids, gates);
        plan.plan(ids.data(), gates.data(), n);
        check_plan(plan, placement, ids, gates, n, top_k);
        if (n == 0) {
          for (int64_t d = 0; d < plan.n_dests(); ++d) EXPECT_EQ(plan.dest(d).n_tokens(), 0);
        }
      }
    }
  }
}

TEST(DispatchPlanTest, ReplicasSplitByTokenIndex) {
  // Expert 0 on both workers: even tokens to worker 0, odd to worker 1.
  auto placement = *ExpertPlacement::from_worker_lists(2, {{0}, {1, 0}});
  DispatchPlan plan(placement, 6, 1);
  const std::vector<int32_t> ids = {0, 0, 0, 1, 0, 0};
  const std::vector<float> gates = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  plan.plan(ids.data(), gates.data(), 6);
  EXPECT_EQ(plan.dest(0).token_rows, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(plan.dest(0).local_ids, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(plan.dest(0).gates, (std::vector<float>{0.1f, 0.3f, 0.5f}));
  EXPECT_EQ(plan.dest(1).token_rows, (std::vector<int32_t>{1, 3, 5}));
  EXPECT_EQ(plan.dest(1).local_ids, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(plan.dest(1).gates, (std::vector<float>{0.2f, 0.4f, 0.6f}));
}

// ---------------------------------------------------------------------------------------------
// ExpertWorker

// One source's message buffers of fixed capacity.
struct SourceBuffers {
  OwnedTensor hidden, ids, gates, partial;
  SourceBuffers(Backend& b, int64_t capacity, int64_t hidden_size, int64_t top_k)
      : hidden(b.alloc(DType::kF32, {capacity, hidden_size})),
        ids(b.alloc(DType::kI32, {capacity, top_k})),
        gates(b.alloc(DType::kF32, {capacity, top_k})),
        partial(b.alloc(DType::kF32, {capacity, hidden_size})) {}
  DispatchMessage dispatch(int64_t n) const {
    DispatchMessage m;
    m.n_tokens = n;
    m.hidden = hidden.tensor;
    m.expert_ids = ids.tensor;
    m.gates = gates.tensor;
    return m;
  }
  CombineMessage combine() const {
    CombineMessage m;
    m.n_tokens = -1;  // must be overwritten
    m.partial = partial.tensor;
    return m;
  }
};

constexpr float kSentinel = 1234.5f;

TEST(ExpertWorkerTest, ProcessMatchesNaiveMoeOverThreeSources) {
  const ModelConfig config = make_config(/*hidden=*/24, /*inter=*/12, /*n_experts=*/8, /*top_k=*/3);
  const int64_t h = config.hidden_size, top_k = config.n_experts_per_tok;
  std::mt19937 rng(77);
  const MoeReference ref(config, rng);
  CpuBackend backend;
  const std::vector<int32_t> experts = {6, 1, 4};  // global ids in local order
  constexpr int64_t kCapacity = 16, kMaxRows = 32;
  ExpertWorker worker(config, backend, ref.worker_weights(backend, experts), kMaxRows);
  EXPECT_EQ(worker.experts(), experts);
  EXPECT_EQ(worker.max_rows(), kMaxRows);

  std::vector<SourceBuffers> sources;
  for (int s = 0; s < 3; ++s) sources.emplace_back(backend, kCapacity, h, top_k);

  // Several rounds with different sizes (0 included, full capacity included), both MoE layers.
  const std::vector<std::vector<int64_t>> rounds = {{5, 0, 9}, {0, 0, 0}, {16, 1, 15}, {0, 7, 0}};
  for (size_t round = 0; round < rounds.size(); ++round) {
    for (int layer : {0, 2}) {
      SCOPED_TRACE("round " + std::to_string(round) + " layer " + std::to_string(layer));
      std::vector<DispatchMessage> in;
      std::vector<CombineMessage> out;
      std::vector<std::vector<double>> want;
      for (int s = 0; s < 3; ++s) {
        const int64_t n = rounds[round][static_cast<size_t>(s)];
        const SourceBuffers& buf = sources[static_cast<size_t>(s)];
        // Random activations; local ids a random subset of this worker's experts (possibly none
        // for a token), -1 elsewhere; random gates.
        const auto x = random_vec(rng, static_cast<size_t>(kCapacity * h), -1.0f, 1.0f);
        const auto g = random_vec(rng, static_cast<size_t>(kCapacity * top_k), 0.05f, 1.0f);
        std::vector<int32_t> ids(static_cast<size_t>(kCapacity * top_k), -1);
        std::vector<double> y(static_cast<size_t>(n * h), 0.0);
        for (int64_t t = 0; t < n; ++t) {
          std::vector<int32_t> local = {0, 1, 2};
          std::shuffle(local.begin(), local.end(), rng);
          for (int64_t k = 0; k < top_k; ++k) {
            if (rng() % 3 == 0) continue;  // that slot's expert is on another worker
            const size_t at = static_cast<size_t>(t * top_k + k);
            ids[at] = local[static_cast<size_t>(k)];
            ref.add_expert(layer, experts[static_cast<size_t>(ids[at])], x.data() + t * h, g[at],
                           y.data() + t * h);
          }
        }
        backend.copy_from_host(buf.hidden.tensor, x.data(), x.size() * sizeof(float));
        backend.copy_from_host(buf.ids.tensor, ids.data(), ids.size() * sizeof(int32_t));
        backend.copy_from_host(buf.gates.tensor, g.data(), g.size() * sizeof(float));
        std::fill_n(buf.partial.tensor.as<float>(), kCapacity * h, kSentinel);
        in.push_back(buf.dispatch(n));
        out.push_back(buf.combine());
        want.push_back(std::move(y));
      }
      const Status st = worker.process(layer, in, out);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      for (int s = 0; s < 3; ++s) {
        const int64_t n = in[static_cast<size_t>(s)].n_tokens;
        EXPECT_EQ(out[static_cast<size_t>(s)].n_tokens, n);
        const float* got = out[static_cast<size_t>(s)].partial.as<float>();
        const auto& y = want[static_cast<size_t>(s)];
        for (int64_t i = 0; i < n * h; ++i) {
          ASSERT_FALSE(std::isnan(got[i]));
          ASSERT_NEAR(got[i], y[static_cast<size_t>(i)], 1e-5) << "source " << s << " elem " << i;
        }
        // Rows past n_tokens are not written.
        for (int64_t i = n * h; i < kCapacity * h; ++i) ASSERT_EQ(got[i], kSentinel);
      }
    }
  }
}

TEST(ExpertWorkerTest, RejectsOutOfRangeLocalExpert) {
  const ModelConfig config = make_config(16, 8, 8, 2);
  std::mt19937 rng(5);
  const MoeReference ref(config, rng);
  CpuBackend backend;
  ExpertWorker worker(config, backend, ref.worker_weights(backend, {2, 3}), 8);
  SourceBuffers buf(backend, 4, config.hidden_size, config.n_experts_per_tok);
  const auto x = random_vec(rng, 4 * 16, -1.0f, 1.0f);
  const auto g = random_vec(rng, 4 * 2, 0.05f, 1.0f);
  backend.copy_from_host(buf.hidden.tensor, x.data(), x.size() * sizeof(float));
  backend.copy_from_host(buf.gates.tensor, g.data(), g.size() * sizeof(float));
  for (int32_t bad : {2, 3, 100, std::numeric_limits<int32_t>::max()}) {
    SCOPED_TRACE(bad);
    const std::vector<int32_t> ids = {0, -1, 1, 0, -1, bad, 1, -1};
    backend.copy_from_host(buf.ids.tensor, ids.data(), ids.size() * sizeof(int32_t));
    const DispatchMessage in = buf.dispatch(4);
    CombineMessage out = buf.combine();
    const Status st = worker.process(0, std::span<const DispatchMessage>(&in, 1),
                                     std::span<CombineMessage>(&out, 1));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  }
  // The worker still works after an error.
  const std::vector<int32_t> ids = {0, -1, 1, 0, -1, 1, 1, -1};
  backend.copy_from_host(buf.ids.tensor, ids.data(), ids.size() * sizeof(int32_t));
  const DispatchMessage in = buf.dispatch(4);
  CombineMessage out = buf.combine();
  ASSERT_TRUE(
      worker
          .process(2, std::span<const DispatchMessage>(&in, 1), std::span<CombineMessage>(&out, 1))
          .is_ok());
  std::vector<double> y(4 * 16, 0.0);
  for (int64_t t = 0; t < 4; ++t) {
    for (int64_t k = 0; k < 2; ++k) {
      const int32_t local = ids[static_cast<size_t>(t * 2 + k)];
      if (local >= 0) {
        ref.add_expert(2, local == 0 ? 2 : 3, x.data() + t * 16, g[static_cast<size_t>(t * 2 + k)],
                       y.data() + t * 16);
      }
    }
  }
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(out.partial.as<float>()[i], y[i], 1e-5);
}

TEST(ExpertWorkerTest, RejectsTooManyRows) {
  const ModelConfig config = make_config(16, 8, 4, 2);
  std::mt19937 rng(6);
  const MoeReference ref(config, rng);
  CpuBackend backend;
  constexpr int64_t kMaxRows = 10;
  ExpertWorker worker(config, backend, ref.worker_weights(backend, {0, 1, 2, 3}), kMaxRows);
  std::vector<SourceBuffers> sources;
  for (int s = 0; s < 2; ++s) sources.emplace_back(backend, 8, config.hidden_size, 2);
  for (auto& s : sources) {
    const auto x = random_vec(rng, 8 * 16, -1.0f, 1.0f);
    const auto g = random_vec(rng, 8 * 2, 0.05f, 1.0f);
    std::vector<int32_t> ids(8 * 2);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % 4);
    backend.copy_from_host(s.hidden.tensor, x.data(), x.size() * sizeof(float));
    backend.copy_from_host(s.ids.tensor, ids.data(), ids.size() * sizeof(int32_t));
    backend.copy_from_host(s.gates.tensor, g.data(), g.size() * sizeof(float));
  }
  // 6 + 5 = 11 > 10 rows, though each source fits on its own.
  std::vector<DispatchMessage> in = {sources[0].dispatch(6), sources[1].dispatch(5)};
  std::vector<CombineMessage> out = {sources[0].combine(), sources[1].combine()};
  const Status st = worker.process(0, in, out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  // Exactly at capacity is fine.
  in = {sources[0].dispatch(5), sources[1].dispatch(5)};
  EXPECT_TRUE(worker.process(0, in, out).is_ok());
  EXPECT_EQ(out[0].n_tokens, 5);
  EXPECT_EQ(out[1].n_tokens, 5);
}

// ---------------------------------------------------------------------------------------------
// The whole round trip: plan → expert workers → combine, against the naive full MoE.

// Adds the experts' sum for one unit into out[n, hidden] (n = hidden.rows()).
using RoundTrip = std::function<Status(const UnitId& unit, const Tensor& hidden, const Tensor& ids,
                                       const Tensor& gates, const Tensor& out)>;
// Makes the round trip under test over `workers` (worker i is placement's worker i).
using MakeRoundTrip = std::function<RoundTrip(Backend& backend, const ExpertPlacement& placement,
                                              std::vector<ExpertWorker*> workers,
                                              int64_t max_tokens, int64_t hidden, int64_t top_k)>;

// DispatchPlan and ExpertWorker::process glued by hand on the host, independently of any link.
RoundTrip make_plan_and_workers(Backend& backend, const ExpertPlacement& placement,
                                std::vector<ExpertWorker*> workers, int64_t max_tokens,
                                int64_t hidden, int64_t top_k) {
  auto plan = std::make_shared<DispatchPlan>(placement, max_tokens, top_k);
  auto buffers = std::make_shared<std::vector<SourceBuffers>>();
  for (size_t d = 0; d < workers.size(); ++d)
    buffers->emplace_back(backend, max_tokens, hidden, top_k);
  return [plan, buffers, workers, hidden, top_k](const UnitId& unit, const Tensor& x,
                                                 const Tensor& ids, const Tensor& gates,
                                                 const Tensor& out) -> Status {
    plan->plan(ids.as<int32_t>(), gates.as<float>(), x.rows());
    for (size_t d = 0; d < workers.size(); ++d) {
      const DispatchPlan::Dest& dest = plan->dest(static_cast<int64_t>(d));
      SourceBuffers& buf = (*buffers)[d];
      for (int64_t i = 0; i < dest.n_tokens(); ++i) {
        std::copy_n(x.as<float>() + dest.token_rows[static_cast<size_t>(i)] * hidden, hidden,
                    buf.hidden.tensor.as<float>() + i * hidden);
      }
      std::copy(dest.local_ids.begin(), dest.local_ids.end(), buf.ids.tensor.as<int32_t>());
      std::copy(dest.gates.begin(), dest.gates.end(), buf.gates.tensor.as<float>());
      const DispatchMessage in = buf.dispatch(dest.n_tokens());
      CombineMessage reply = buf.combine();
      MSI_RETURN_IF_ERROR(workers[d]->process(unit.layer, std::span<const DispatchMessage>(&in, 1),
                                              std::span<CombineMessage>(&reply, 1)));
      if (reply.n_tokens != dest.n_tokens()) return Status(StatusCode::kInternal, "reply size");
      for (int64_t i = 0; i < reply.n_tokens; ++i) {
        float* o = out.as<float>() + dest.token_rows[static_cast<size_t>(i)] * hidden;
        const float* p = reply.partial.as<float>() + i * hidden;
        for (int64_t c = 0; c < hidden; ++c) o[c] += p[c];
      }
    }
    return Status::ok();
  };
}

void run_round_trip_case(const MakeRoundTrip& make, int64_t n_experts, int64_t top_k,
                         const ExpertPlacement& placement, uint32_t seed) {
  const ModelConfig config = make_config(/*hidden=*/32, /*inter=*/16, n_experts, top_k);
  const int64_t h = config.hidden_size;
  std::mt19937 rng(seed);
  const MoeReference ref(config, rng);
  CpuBackend backend;
  constexpr int64_t kMaxTokens = 24;
  std::vector<std::unique_ptr<ExpertWorker>> owned;
  std::vector<ExpertWorker*> workers;
  for (int64_t w = 0; w < placement.n_workers(); ++w) {
    // Each token goes at most once to a worker, so max_tokens rows suffice.
    owned.push_back(std::make_unique<ExpertWorker>(
        config, backend, ref.worker_weights(backend, placement.experts_of(w)), kMaxTokens));
    workers.push_back(owned.back().get());
  }
  const RoundTrip round_trip = make(backend, placement, workers, kMaxTokens, h, top_k);

  OwnedTensor hidden = backend.alloc(DType::kF32, {kMaxTokens, h});
  OwnedTensor ids_t = backend.alloc(DType::kI32, {kMaxTokens, top_k});
  OwnedTensor gates_t = backend.alloc(DType::kF32, {kMaxTokens, top_k});
  OwnedTensor out = backend.alloc(DType::kF32, {kMaxTokens, h});
  int64_t step = 0;
  for (int64_t n : {int64_t{7}, int64_t{0}, kMaxTokens, int64_t{1}, int64_t{13}}) {
    for (int layer : {0, 2}) {
      SCOPED_TRACE("n " + std::to_string(n) + " layer " + std::to_string(layer));
      const auto x = random_vec(rng, static_cast<size_t>(n * h), -1.0f, 1.0f);
      std::vector<int32_t> ids;
      std::vector<float> gates;
      random_routing(rng, n, n_experts, top_k, ids, gates);
      // The combine adds into out: start from random values, not zeros.
      const auto base = random_vec(rng, static_cast<size_t>(kMaxTokens * h), -1.0f, 1.0f);
      backend.copy_from_host(hidden.tensor, x.data(), x.size() * sizeof(float));
      backend.copy_from_host(ids_t.tensor, ids.data(), ids.size() * sizeof(int32_t));
      backend.copy_from_host(gates_t.tensor, gates.data(), gates.size() * sizeof(float));
      backend.copy_from_host(out.tensor, base.data(), base.size() * sizeof(float));

      UnitId unit;
      unit.step = step++;
      unit.layer = layer;
      const Status st =
          round_trip(unit, hidden.tensor.slice_rows(0, n), ids_t.tensor.slice_rows(0, n),
                     gates_t.tensor.slice_rows(0, n), out.tensor.slice_rows(0, n));
      ASSERT_TRUE(st.is_ok()) << st.to_string();

      const std::vector<double> want = ref.full_moe(layer, x.data(), ids.data(), gates.data(), n);
      const float* o = out.tensor.as<float>();
      for (int64_t i = 0; i < n * h; ++i) {
        ASSERT_FALSE(std::isnan(o[i]));
        ASSERT_NEAR(o[i] - base[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-5)
            << "elem " << i;
      }
      // Rows past n untouched.
      for (int64_t i = n * h; i < kMaxTokens * h; ++i) {
        ASSERT_EQ(o[i], base[static_cast<size_t>(i)]);
      }
    }
  }
}

void run_contiguous_cases(const MakeRoundTrip& make) {
  for (int64_t top_k : {1, 2, 3}) {
    for (int64_t n_workers = 1; n_workers <= 4; ++n_workers) {
      SCOPED_TRACE("top_k " + std::to_string(top_k) + " workers " + std::to_string(n_workers));
      const auto placement = *ExpertPlacement::contiguous(8, n_workers);
      run_round_trip_case(make, 8, top_k, placement,
                          static_cast<uint32_t>(100 + 10 * top_k + n_workers));
    }
  }
}

void run_replicated_case(const MakeRoundTrip& make) {
  const auto placement =
      *ExpertPlacement::from_worker_lists(6, {{0, 1, 5, 2}, {2, 3, 5}, {4, 5, 0}});
  run_round_trip_case(make, 6, 2, placement, 31337);
}

TEST(PlanAndWorkersTest, MatchNaiveMoeOverContiguousPlacements) {
  run_contiguous_cases(make_plan_and_workers);
}

TEST(PlanAndWorkersTest, MatchNaiveMoeWithReplicatedExperts) {
  run_replicated_case(make_plan_and_workers);
}


}  // namespace
}  // namespace msi

// The pipeline simulator against the paper's closed form: agreement on balanced loads over a grid
// (several attention and expert workers included), the serial m = 1 case, the bubble when the
// transfers are too long, the slowdown from skewed expert load, deterministic jitter, the Chrome
// trace, a 1,024-GPU deployment in well under a second, and validation errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "planner/pipeline_sim.h"

namespace msi {
namespace {

using ::testing::HasSubstr;

SimConfig balanced(double t_a, double t_e, double t_c, int64_t m, int64_t n_layers) {
  SimConfig c;
  c.n_layers = n_layers;
  c.n_micro_batches = m;
  c.attention_ms = t_a;
  c.expert_cost = {0.0, t_e};
  c.transfer_ms = t_c;
  return c;
}

TEST(PipelineSimTest, ClosedFormByHand) {
  // (1 + 1 + 2·0.1) + 1·(4·2 − 1)
  EXPECT_DOUBLE_EQ(closed_form_step_ms(1.0, 1.0, 0.1, 4, 2), 9.2);
  // T_f = max(T_a, T_e) = 2: (1 + 2 + 1) + 2·(3·1 − 1)
  EXPECT_DOUBLE_EQ(closed_form_step_ms(1.0, 2.0, 0.5, 3, 1), 8.0);
  EXPECT_TRUE(closed_form_holds(1.0, 1.0, 0.5, 3));    // 3 ≥ 2·1.5
  EXPECT_FALSE(closed_form_holds(1.0, 1.0, 0.6, 3));   // 3 < 2·1.6
  EXPECT_FALSE(closed_form_holds(1.0, 1.0, 1.0, 10));  // T_c is not < T_f
}

TEST(PipelineSimTest, AgreesWithClosedFormOnBalancedLoads) {
  const std::vector<std::pair<int64_t, int64_t>> workers = {{1, 1}, {4, 2}, {2, 8}, {16, 16}};
  int n_checked = 0;
  double worst = 0.0;
  for (double t_a : {1.0, 2.0}) {
    for (double t_e : {0.8, 1.0, 1.6, 2.5}) {
      for (double t_c : {0.0, 0.1, 0.5}) {
        for (int64_t m : {2, 3, 4, 6}) {
          for (int64_t n_layers : {1, 3, 16}) {
            if (!closed_form_holds(t_a, t_e, t_c, m)) continue;
            for (auto [n_a, n_e] : workers) {
              SimConfig c = balanced(t_a, 0.0, t_c, m, n_layers);
              c.n_attention_workers = n_a;
              c.n_expert_workers = n_e;
              // T_e from the linear cost at a uniform share: k3 · (n_a · 8 · 2 / n_e) + k4.
              c.tokens_per_micro_batch = 8;
              c.top_k = 2;
              const double pairs = static_cast<double>(n_a * 8 * 2) / static_cast<double>(n_e);
              c.expert_cost = {0.5 * t_e / pairs, 0.5 * t_e};
              auto r = simulate_pipeline(c);
              ASSERT_TRUE(r.is_ok()) << r.status().to_string();
              const double want = closed_form_step_ms(t_a, t_e, t_c, m, n_layers);
              const double rel = std::abs(r->step_ms - want) / want;
              worst = std::max(worst, rel);
              EXPECT_LE(rel, 0.05) << "T_a " << t_a << " T_e " << t_e << " T_c " << t_c << " m "
                                   << m << " L " << n_layers << " n_a " << n_a << " n_e " << n_e
                                   << ": simulated " << r->step_ms << " closed form " << want;
              EXPECT_NEAR(r->closed_form_ms, want, 1e-9 * want);
              EXPECT_TRUE(r->closed_form_holds);
              ++n_checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(n_checked, 200);
  // Without jitter the closed form is exact where it holds.
  EXPECT_LT(worst, 1e-9);
}

TEST(PipelineSimTest, SmallJitterStaysWithinFivePercent) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SimConfig c = balanced(1.0, 1.0, 0.2, 4, 24);
    c.n_attention_workers = 4;
    c.n_expert_workers = 4;
    c.jitter = 0.02;
    c.seed = seed;
    auto r = simulate_pipeline(c);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_NEAR(r->step_ms / r->closed_form_ms, 1.0, 0.05) << "seed " << seed;
  }
}

TEST(PipelineSimTest, OneMicroBatchIsSerial) {
  for (int64_t n_layers : {1, 5, 32}) {
    SimConfig c = balanced(1.5, 1.0, 0.3, 1, n_layers);
    c.n_attention_workers = 3;
    c.n_expert_workers = 2;
    auto r = simulate_pipeline(c);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const double serial = static_cast<double>(n_layers) * (1.5 + 1.0 + 2 * 0.3);
    EXPECT_NEAR(r->step_ms, serial, 1e-9 * serial) << "L " << n_layers;
    EXPECT_NEAR(r->attention[0].busy_fraction, 1.5 / (1.5 + 1.0 + 0.6), 1e-9);
  }
}

TEST(PipelineSimTest, LongTransfersLeaveABubble) {
  // T_c = 2 > T_f = 1 with m = 3: a layer takes the round trip T_a + T_e + 2·T_c = 6, not m·T_f,
  // and the last micro-batch starts (m − 1)·T_a after the first: 16·6 + 2 = 98, not 53.
  SimConfig c = balanced(1.0, 1.0, 2.0, 3, 16);
  auto r = simulate_pipeline(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE(r->closed_form_holds);
  EXPECT_DOUBLE_EQ(r->closed_form_ms, 53.0);
  EXPECT_NEAR(r->step_ms, 16 * 6.0 + 2 * 1.0, 1e-9);
  EXPECT_LT(r->attention[0].busy_fraction, 0.6);
  EXPECT_GT(r->attention[0].idle_ms, 0.4 * r->step_ms);

  // Enough micro-batches hide a pure delay, but not a link that carries one transfer at a time:
  // with T_c = 1.5 > T_f the sender's link paces the pipeline at T_c per unit.
  SimConfig hidden = balanced(1.0, 1.0, 1.5, 8, 16);
  auto pure = simulate_pipeline(hidden);
  ASSERT_TRUE(pure.is_ok());
  EXPECT_NEAR(pure->step_ms, closed_form_step_ms(1.0, 1.0, 1.5, 8, 16), 1e-9);
  hidden.serialize_transfers = true;
  auto serialized = simulate_pipeline(hidden);
  ASSERT_TRUE(serialized.is_ok());
  EXPECT_GT(serialized->step_ms, 1.4 * pure->step_ms);
}

TEST(PipelineSimTest, SkewedExpertLoadIsSlower) {
  SimConfig c = balanced(1.0, 0.0, 0.1, 4, 16);
  c.n_attention_workers = 4;
  c.n_expert_workers = 4;
  c.tokens_per_micro_batch = 64;
  c.top_k = 2;
  c.expert_cost = {0.002, 0.5};  // 512 pairs a unit: 128 each → T_e = 0.756
  auto uniform = simulate_pipeline(c);
  ASSERT_TRUE(uniform.is_ok());
  c.expert_load_shares = {0.55, 0.15, 0.15, 0.15};  // worker 0: 281.6 pairs → T_e = 1.0632
  auto skewed = simulate_pipeline(c);
  ASSERT_TRUE(skewed.is_ok());
  EXPECT_NEAR(uniform->nominal_expert_ms, 0.756, 1e-12);
  EXPECT_NEAR(skewed->nominal_expert_ms, 1.0632, 1e-12);
  EXPECT_GT(skewed->step_ms, uniform->step_ms * 1.03);
  // The hot worker sets the pace; the closed form at its T_e still holds.
  EXPECT_NEAR(skewed->step_ms, skewed->closed_form_ms, 0.05 * skewed->closed_form_ms);
  EXPECT_GT(skewed->expert[0].busy_fraction, skewed->expert[1].busy_fraction + 0.2);
  EXPECT_GT(skewed->expert[0].busy_fraction, 0.9);
}

TEST(PipelineSimTest, SlowestAttentionWorkerSetsThePace) {
  SimConfig c = balanced(1.0, 1.0, 0.1, 4, 8);
  c.n_attention_workers = 3;
  c.attention_ms_per_worker = {1.0, 1.4, 1.0};
  auto r = simulate_pipeline(c);
  ASSERT_TRUE(r.is_ok());
  EXPECT_DOUBLE_EQ(r->nominal_attention_ms, 1.4);
  EXPECT_NEAR(r->step_ms, closed_form_step_ms(1.4, 1.0, 0.1, 4, 8), 1e-9);
  EXPECT_LT(r->attention[0].busy_fraction, r->attention[1].busy_fraction);
}

TEST(PipelineSimTest, JitterIsDeterministicPerSeed) {
  SimConfig c = balanced(1.0, 1.2, 0.2, 4, 8);
  c.n_attention_workers = 2;
  c.n_expert_workers = 3;
  c.jitter = 0.1;
  c.seed = 42;
  c.record_trace = true;
  auto a = simulate_pipeline(c);
  auto b = simulate_pipeline(c);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->step_ms, b->step_ms);
  ASSERT_EQ(a->trace.size(), b->trace.size());
  for (size_t k = 0; k < a->trace.size(); ++k) {
    EXPECT_EQ(a->trace[k].begin_ms, b->trace[k].begin_ms);
    EXPECT_EQ(a->trace[k].end_ms, b->trace[k].end_ms);
  }
  c.seed = 43;
  auto other = simulate_pipeline(c);
  c.jitter = 0.0;
  auto none = simulate_pipeline(c);
  ASSERT_TRUE(other.is_ok() && none.is_ok());
  EXPECT_NE(a->step_ms, other->step_ms);
  EXPECT_NE(a->step_ms, none->step_ms);
  // Jittered stage times stay within ±10% of nominal.
  for (const SimSpan& s : a->trace) {
    const double nominal = s.kind == SimSpanKind::kAttention ? 1.0
                           : s.kind == SimSpanKind::kExpert  ? 1.2
                                                             : 0.2;
    EXPECT_GE(s.end_ms - s.begin_ms, 0.9 * nominal - 1e-12);
    EXPECT_LE(s.end_ms - s.begin_ms, 1.1 * nominal + 1e-12);
  }
}

TEST(PipelineSimTest, TraceIsAChromeTraceWithoutOverlaps) {
  SimConfig c = balanced(1.0, 0.9, 0.3, 3, 4);
  c.n_attention_workers = 2;
  c.n_expert_workers = 2;
  c.record_trace = true;
  auto r = simulate_pipeline(c);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->trace.size(), 2u * (2 + 2) * 3 * 4);
  const nlohmann::json events = sim_trace_events(c, *r);
  std::map<std::pair<int, int64_t>, std::vector<std::pair<double, double>>> tracks;
  int n_spans = 0;
  for (const auto& ev : events) {
    ASSERT_TRUE(ev.contains("name") && ev.contains("ph") && ev.contains("pid"));
    if (ev["ph"] != "X") continue;
    ++n_spans;
    const double ts = ev["ts"], dur = ev["dur"];
    EXPECT_GE(ts, 0.0);
    EXPECT_LE((ts + dur) / 1e3, r->step_ms + 1e-9);
    tracks[{ev["pid"].get<int>(), ev["tid"].get<int64_t>()}].push_back({ts, ts + dur});
  }
  EXPECT_EQ(n_spans, static_cast<int>(r->trace.size()));
  for (auto& [track, spans] : tracks) {
    std::sort(spans.begin(), spans.end());
    for (size_t k = 1; k < spans.size(); ++k) {
      EXPECT_GE(spans[k].first, spans[k - 1].second - 1e-9)
          << "pid " << track.first << " tid " << track.second;
    }
  }
  for (const auto& s : r->attention) EXPECT_NEAR(s.busy_ms + s.idle_ms, r->step_ms, 1e-9);
  const nlohmann::json summary = sim_result_json(*r);
  EXPECT_EQ(summary["attention"]["busy_fraction"].size(), 2u);
  EXPECT_DOUBLE_EQ(summary["step_ms"].get<double>(), r->step_ms);
  c.record_trace = false;
  auto untraced = simulate_pipeline(c);
  ASSERT_TRUE(untraced.is_ok());
  EXPECT_TRUE(untraced->trace.empty());
  EXPECT_TRUE(sim_trace_events(c, *untraced).empty());
}

TEST(PipelineSimTest, ThousandGpusRunQuickly) {
  // 768 attention + 256 expert workers, 64 layers, 4 micro-batches: ~0.5 M events.
  SimConfig c = balanced(1.0, 0.0, 0.2, 4, 64);
  c.n_attention_workers = 768;
  c.n_expert_workers = 256;
  c.tokens_per_micro_batch = 32;
  c.top_k = 8;
  c.expert_cost = {1.0 / 768.0, 0.0};  // 768 pairs per expert worker → T_e = 1
  c.jitter = 0.05;
  c.seed = 7;
  // CPU time, not wall time: a loaded CI machine must not make this flaky.
  const std::clock_t t0 = std::clock();
  auto r = simulate_pipeline(c);
  const double seconds = static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC;
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->n_events, 2 * (768 + 256) * 4 * 64);
  EXPECT_LT(seconds, 1.0);
  // With 1,024 workers each unit waits for the slowest of many jittered draws: slower than the
  // closed form, but bounded by the largest factor.
  EXPECT_GT(r->step_ms, r->closed_form_ms);
  EXPECT_LT(r->step_ms, 1.1 * r->closed_form_ms);
}

void expect_invalid(const SimConfig& c, const std::string& want) {
  auto r = simulate_pipeline(c);
  ASSERT_FALSE(r.is_ok()) << want;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << want;
  EXPECT_THAT(r.status().message(), HasSubstr(want));
}

TEST(PipelineSimTest, BadInputsAreErrors) {
  const SimConfig ok = balanced(1.0, 1.0, 0.1, 4, 2);
  ASSERT_TRUE(simulate_pipeline(ok).is_ok());
  SimConfig c = ok;
  c.n_layers = 0;
  expect_invalid(c, "n_layers is 0");
  c = ok;
  c.n_micro_batches = -1;
  expect_invalid(c, "n_micro_batches is -1");
  c = ok;
  c.n_attention_workers = 0;
  expect_invalid(c, "n_attention_workers");
  c = ok;
  c.n_expert_workers = 0;
  expect_invalid(c, "n_expert_workers");
  c = ok;
  c.n_layers = 1 << 20;
  c.n_micro_batches = 1 << 10;
  expect_invalid(c, "past the limit");
  c = ok;
  c.attention_ms = std::nan("");
  expect_invalid(c, "attention_ms is nan");
  c = ok;
  c.attention_ms_per_worker = {1.0, 1.0};
  expect_invalid(c, "attention_ms_per_worker has 2 entries for 1 attention workers");
  c = ok;
  c.attention_ms_per_worker = {-1.0};
  expect_invalid(c, "attention_ms_per_worker[0]");
  c = ok;
  c.expert_cost = {-0.1, 1.0};
  expect_invalid(c, "expert_cost");
  c = ok;
  c.expert_cost_per_worker = {{}, {}};
  expect_invalid(c, "expert_cost_per_worker has 2 entries");
  c = ok;
  c.tokens_per_micro_batch = -1;
  expect_invalid(c, "tokens_per_micro_batch");
  c = ok;
  c.top_k = 0;
  expect_invalid(c, "top_k");
  c = ok;
  c.expert_load_shares = {0.5, 0.5};
  expect_invalid(c, "expert_load_shares has 2 entries for 1 expert workers");
  c = ok;
  c.n_expert_workers = 2;
  c.expert_load_shares = {0.5, 0.4};
  expect_invalid(c, "sum to 0.9");
  c.expert_load_shares = {1.5, -0.5};
  expect_invalid(c, "expert_load_shares[1]");
  c = ok;
  c.transfer_ms = -0.1;
  expect_invalid(c, "transfer_ms");
  c = ok;
  c.jitter = 1.0;
  expect_invalid(c, "jitter is 1");
}

}  // namespace
}  // namespace msi

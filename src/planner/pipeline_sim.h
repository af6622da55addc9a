// Discrete-event simulator of the ping-pong pipeline (DESIGN.md §2) for one decode step: every
// (layer, micro-batch) unit on every attention worker, expert worker and transfer, with jittered
// stage times and uneven expert load. It checks the paper's closed form and explores deployments
// far beyond the hardware at hand (thousands of GPUs); docs/simulator.md says what it models.
//
// The pipeline, as the engine runs it (units in the order (0,0), (0,1), …, (0,m-1), (1,0), …):
//   - attention worker a runs unit (l, i) after its unit before it and, for l > 0, after the
//     combine of (l-1, i) from every expert worker has arrived; then it dispatches (one transfer
//     that reaches every expert worker);
//   - expert worker e runs unit (l, i) after its unit before it and after the dispatch of (l, i)
//     from every attention worker has arrived; then it combines (one transfer back to every
//     attention worker);
//   - the step ends when the last combine reaches the last attention worker.
// A worker is one serial resource. A transfer is a pure delay, or, with `serialize_transfers`,
// occupies its sender's egress link (one transfer at a time per sender, in unit order).
//
// Owns nothing but values; thread-compatible. simulate_pipeline allocates O(units + workers)
// (plus the trace when asked for) and never blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi {

// The paper's closed form for one step of `n_layers` layers with `n_micro_batches` (m)
// micro-batches: (T_a + T_e + 2·T_c) + T_f·(m·L − 1), T_f = max(T_a, T_e). Times in ms.
// NOTE: exact only while the pipeline has no bubble, see closed_form_holds().
double closed_form_step_ms(double t_a, double t_e, double t_c, int64_t n_micro_batches,
                           int64_t n_layers);
// The closed form's conditions: T_c < T_f and m·T_f ≥ 2·(T_f + T_c).
bool closed_form_holds(double t_a, double t_e, double t_c, int64_t n_micro_batches);

// Expert compute of one unit on one expert worker: ms_per_token · tokens + fixed_ms, where tokens
// counts routed (token, expert) pairs that the worker receives for the unit (the paper's k3, k4).
struct ExpertCost {
  double ms_per_token = 0.0;
  double fixed_ms = 0.0;
};

struct SimConfig {
  int64_t n_layers = 1;             // L: MoE layers of the step
  int64_t n_micro_batches = 1;      // m
  int64_t n_attention_workers = 1;  // n_a
  int64_t n_expert_workers = 1;     // n_e

  // T_a: attention compute of one micro-batch for one layer, ms. `attention_ms_per_worker`
  // ([n_attention_workers]) overrides it when not empty.
  double attention_ms = 1.0;
  std::vector<double> attention_ms_per_worker;

  // T_e(tokens) per expert worker; `expert_cost_per_worker` ([n_expert_workers]) overrides
  // `expert_cost` when not empty. A fixed T_e is {0, T_e}.
  ExpertCost expert_cost{0.0, 1.0};
  std::vector<ExpertCost> expert_cost_per_worker;

  // Routing: each attention worker has `tokens_per_micro_batch` tokens in every micro-batch, each
  // routed to `top_k` experts, so one unit carries n_a · tokens_per_micro_batch · top_k routed
  // pairs. Expert worker e receives the share `expert_load_shares[e]` of them ([n_expert_workers],
  // non-negative, summing to 1; empty: uniform). The same shares hold for every layer.
  int64_t tokens_per_micro_batch = 1;
  int64_t top_k = 1;
  std::vector<double> expert_load_shares;

  double transfer_ms = 0.0;          // T_c: one dispatch or one combine, ms
  bool serialize_transfers = false;  // a sender's transfers queue on its one egress link

  // Every stage time (attention, expert, transfer) is multiplied by a factor drawn uniformly in
  // [1 − jitter, 1 + jitter], 0 ≤ jitter < 1. The draw depends only on (seed, stage, worker,
  // unit), so a seed gives the same step whatever else changes in the config's event order.
  double jitter = 0.0;
  uint64_t seed = 0;

  bool record_trace = false;  // keep every span (memory: 2·(n_a + n_e)·m·L spans)
};

struct SimWorkerStats {
  double busy_ms = 0.0;        // compute spans, summed
  double idle_ms = 0.0;        // step_ms − busy_ms
  double busy_fraction = 0.0;  // busy_ms / step_ms
};

enum class SimSpanKind : uint8_t { kAttention, kExpert, kDispatch, kCombine };
const char* sim_span_kind_name(SimSpanKind kind);

struct SimSpan {
  SimSpanKind kind;
  int32_t worker;  // attention worker for kAttention/kDispatch, expert worker otherwise
  int32_t layer;
  int32_t micro_batch;
  double begin_ms;
  double end_ms;
};

struct SimResult {
  double step_ms = 0.0;
  // The closed form at the nominal (jitter-free) stage times of the slowest workers, for
  // comparison: T_a = max over attention workers, T_e = max over expert workers.
  double nominal_attention_ms = 0.0;
  double nominal_expert_ms = 0.0;
  double closed_form_ms = 0.0;
  bool closed_form_holds = false;
  std::vector<SimWorkerStats> attention;  // [n_attention_workers]
  std::vector<SimWorkerStats> expert;     // [n_expert_workers]
  int64_t n_events = 0;
  std::vector<SimSpan> trace;  // when SimConfig::record_trace, in the order spans were scheduled
};

// Checks `config` (InvalidArgument naming the bad field) and simulates one decode step.
// Cost: O(E log E) time for E = 2·(n_a + n_e)·m·L events; refuses configs past 2^27 (worker, unit)
// pairs rather than run for minutes.
Result<SimResult> simulate_pipeline(const SimConfig& config);

// {"step_ms", "closed_form_ms", "closed_form_holds", "nominal_attention_ms", "nominal_expert_ms",
//  "n_events", "attention": {"busy_fraction": [...], "idle_ms": [...]}, "expert": {...}}
nlohmann::json sim_result_json(const SimResult& result);

// The trace of `result` (simulated from `config`) as Chrome trace events, for
// pipeline/chrome_trace.h's write_chrome_trace: pid 0 attention workers, 1 expert workers,
// 2 dispatches and 3 combines (one track per sender and micro-batch, so spans never overlap on a
// track); ts and dur in µs. An empty array when the trace was not recorded.
nlohmann::json sim_trace_events(const SimConfig& config, const SimResult& result);

}  // namespace msi

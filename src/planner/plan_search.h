// Deployment-plan search: MegaScale-Infer's Algorithm 1 over the performance model
// (perf_model.h), for every pair of candidate attention and expert GPU types, plus colocated
// expert parallelism on each GPU type alone, so the caller sees whether disaggregation pays.
//
// Algorithm 1, per (attention GPU, expert GPU):
//   for tp_e in the expert profile's tp values, for n_e in the divisors of E (g = E/n_e experts
//   per expert worker; the paper's n_e = E):
//     for tp_a in the attention profile's tp values:
//       n_a from the balance condition n_a = k1·E/(k3·K·g) (its floor and ceiling), or — the
//       default, kSweep — every n_a up to the GPU limit, which contains the balance values. The
//       closed form drops the intercepts k2, k4; where the expert weight-load intercept k4
//       dominates (an L40S holding a Mixtral-8x22B expert reads 0.6 GB per layer), it under-feeds
//       the experts, so the sweep finds better plans. Each candidate reports its closed-form n_a.
//       for m in [min_micro_batches, N_m]:
//         binary-search the largest b_a (sequences per micro-batch) that meets every constraint
//         (memory, T_c < T_f, m·T_f ≥ 2(T_f+T_c), TBT ≤ SLO)
//   keep the best m per (tp_a, tp_e, n_e, n_a); rank by tokens/s per cost, then tokens/s.
// Colocated, per GPU type: n_gpus over the divisors and multiples of E up to max_gpus, tp_a
// dividing n_gpus; binary-search the batch per attention group.
//
// Pure computation; thread-safe; allocates the candidate lists. Never blocks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "planner/deployment_plan.h"
#include "planner/perf_model.h"

namespace msi::planner {

enum class NAttentionMode { kBalance, kSweep };

struct SearchOptions {
  double slo_tbt_ms = 150;       // the TBT SLO: T_total ≤ this
  int max_gpus = 64;             // attention + expert GPUs of one deployment
  double seq_len = 1024;         // average context length during decode (KV sizing, k1/k2)
  int min_micro_batches = 2;     // m starts here (m = 2 needs T_c = 0)
  int max_micro_batches = 8;     // N_m
  double memory_fraction = 0.9;  // of each GPU's memory usable for weights and KV
  int64_t max_batch = 8192;      // upper bound of the batch binary search
  NAttentionMode n_attention_mode = NAttentionMode::kSweep;
  bool colocated = true;  // also score colocated deployments
};

struct Candidate {
  PlanKind kind = PlanKind::kDisaggregated;
  std::string attention_gpu, expert_gpu;
  int tp_a = 1, tp_e = 1;
  int n_a = 1, n_e = 1;  // colocated: attention groups and expert shards
  int m = 1;
  int64_t b_a = 1;         // sequences per micro-batch per attention worker (group)
  double n_a_balance = 0;  // the closed-form balance n_a (disaggregated)
  Prediction predicted;
};

// Best first: tokens/s per cost, then tokens/s, then fewer GPUs.
bool better_candidate(const Candidate& a, const Candidate& b);

// The largest b_a in [1, max_batch] whose prediction is feasible with the other fields of
// `shape` (written to shape.b_a); nullopt when no batch is (the violation that rules it out goes
// to `why` when given). Memory and the SLO only tighten with the batch; the communication
// conditions can fail below some batch and hold above it, which the search bisects for first.
std::optional<Prediction> best_batch(const DisaggregatedSetup& setup, DisaggregatedShape& shape,
                                     double slo_ms, int64_t max_batch, std::string* why = nullptr);
std::optional<Prediction> best_batch(const ColocatedSetup& setup, int64_t& b, double slo_ms,
                                     int64_t max_batch, std::string* why = nullptr);

// Algorithm 1 for one GPU pair: every feasible candidate, best first. Empty when none fits.
std::vector<Candidate> search_disaggregated(const ModelShape& model, const GpuSide& attention,
                                            const GpuSide& expert, const SearchOptions& options);
// Colocated on one GPU type: every feasible candidate, best first.
std::vector<Candidate> search_colocated(const ModelShape& model, const GpuSide& gpu,
                                        const SearchOptions& options);

struct SearchResult {
  std::vector<Candidate> disaggregated;  // all GPU pairs, best first
  std::vector<Candidate> colocated;      // all GPU types, best first
  // The best of both lists (nullptr when nothing is feasible).
  const Candidate* best() const;
};

// Every pair of (attention, expert) GPU types, and colocated on each distinct type of either list
// when options.colocated. InvalidArgument on bad options (SLO, GPU limit, sequence length,
// micro-batch range, memory fraction) and when nothing is feasible — then the message names the
// constraint that rules out the smallest layout closest to the SLO.
Result<SearchResult> search_plans(const ModelShape& model, const std::vector<GpuSide>& attention,
                                  const std::vector<GpuSide>& expert, const SearchOptions& options);

// The plan file for a candidate.
DeploymentPlan to_deployment_plan(const Candidate& c, const ModelShape& model,
                                  const SearchOptions& options);

}  // namespace msi::planner

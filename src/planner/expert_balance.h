// Expert load balancing (MegaScale-Infer §6): from the tokens-per-expert statistics that
// `msinfer bench --json` records ("expert_load"), a placement of the routed experts on the expert
// workers that replicates the heavy hitters and packs the replicas so that the most loaded worker
// gets as few tokens as possible. `msinfer plan --expert-load stats.json` prints the proposal.
//
// Objective: the engine's ExpertPlacement is the same for every MoE layer, so the greedy balances
// each expert's load summed over the MoE layers of the window. The report also gives
// layer_max_sum, the sum over layers of that layer's busiest worker: what the pipeline pays,
// since each layer's expert stage waits for its slowest expert worker.
//
// Owns nothing but values; thread-compatible. Nothing here blocks except reading the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "roles/expert_placement.h"

namespace msi {

// Routed (token, expert) pairs per MoE layer and global expert id, over `window_steps` steps.
struct ExpertLoadStats {
  int64_t window_steps = 0;
  int64_t n_experts = 0;
  // [n_layers][n_experts]; a dense layer's row is empty. Non-negative.
  std::vector<std::vector<double>> tokens_per_expert;

  // Summed over the layers: [n_experts].
  std::vector<double> total_per_expert() const;
};

// Parses {"window_steps": N, "n_experts": E, "tokens_per_expert": [[...], ...]}, or a whole bench
// result that holds it under "expert_load". InvalidArgument with the offending field otherwise;
// at least one layer must have a row of n_experts counts.
Result<ExpertLoadStats> parse_expert_load(const nlohmann::json& j);
// Reads and parses a JSON file (IoError if it cannot be read).
Result<ExpertLoadStats> read_expert_load_file(const std::filesystem::path& path);

struct BalanceOptions {
  int64_t n_expert_workers = 1;  // 1 to n_experts
  // Experts one worker can hold (its memory for expert weights). 0: ceil(n_experts / workers) + 1,
  // one spare slot per worker for replicas. Must leave room for every expert (slots·workers ≥ E);
  // values above n_experts act as n_experts (an expert sits at most once on a worker).
  int64_t slots_per_worker = 0;
};

// Predicted tokens per worker of a placement: a replicated expert's tokens split evenly over its
// replicas (ExpertPlacement::route sends token i to replica i % n_replicas).
struct WorkerLoads {
  std::vector<double> tokens;  // [n_workers], summed over layers
  double max = 0.0;
  double mean = 0.0;
  double imbalance = 0.0;      // max / mean (0 when there is no load)
  double layer_max_sum = 0.0;  // Σ over layers of that layer's busiest worker's tokens
};
// Requires placement.n_experts() == stats.n_experts (checked).
WorkerLoads predict_worker_loads(const ExpertPlacement& placement, const ExpertLoadStats& stats);

struct BalanceResult {
  ExpertPlacement placement;  // the proposal
  int64_t slots_per_worker = 0;
  int64_t n_replicas = 0;        // expert copies beyond the first, over all experts
  bool kept_contiguous = false;  // the greedy found nothing better: the proposal is contiguous
  WorkerLoads before;            // ExpertPlacement::contiguous
  WorkerLoads after;             // the proposal; after.max <= before.max always
};

// The greedy: start from one replica per expert; repeatedly give one more replica to the expert
// with the highest load per replica (while slots remain and it is hotter per replica than the mean
// expert), packing all replicas after each step by LPT (largest first onto the least loaded
// worker that has a free slot and does not hold that expert yet); keep the step with the lowest
// max worker load. Falls back to the contiguous placement unless that is strictly beaten.
// Cost: O(E · (E + R) log(E + R)) for R replicas. InvalidArgument for bad options or rows.
Result<BalanceResult> balance_experts(const ExpertLoadStats& stats, const BalanceOptions& options);

// {"n_experts", "n_expert_workers", "slots_per_worker", "n_replicas", "kept_contiguous",
//  "placement": ExpertPlacement::to_json(), "before"/"after": {"worker_tokens", "max", "mean",
//  "imbalance", "layer_max_sum"}, "max_reduction": 1 − after.max / before.max}
nlohmann::json balance_report_json(const BalanceResult& result);

// Each worker's share of the routed pairs ([n_workers], summing to 1; uniform when there is no
// load): SimConfig::expert_load_shares for the pipeline simulator.
std::vector<double> load_shares(const WorkerLoads& loads);

}  // namespace msi

// DeploymentPlan: what `msinfer plan` chooses and the engine loads with `--plan plan.json` —
// which GPUs run attention and experts, with how much tensor parallelism, how many workers of
// each, how many micro-batches, and how many sequences each attention worker may hold; plus what
// the performance model predicted for it (informational: the engine ignores it). Free of engine
// types: the engine maps the plan onto its own options.
//
// JSON layout (format "msinfer-deployment-plan", version 1):
//   {"format": ..., "version": 1, "kind": "disaggregated" | "colocated", "model": "mixtral",
//    "attention_gpu": "H20", "expert_gpu": "L40S", "tp_a": 1, "tp_e": 2,
//    "n_attention_workers": 12, "n_expert_workers": 8, "n_micro_batches": 3,
//    "micro_batch_size": 96, "max_num_seqs": 288, "avg_seq_len": 1024, "slo_tbt_ms": 150,
//    "predicted": {"t_a_ms", "t_e_ms", "t_c_ms", "tbt_ms", "global_batch", "tokens_per_s",
//                  "tokens_per_s_per_gpu", "tokens_per_s_per_cost", "n_gpus", "cost"}}
// Colocated plans: attention_gpu == expert_gpu; n_attention_workers attention groups of tp_a
// GPUs and n_expert_workers expert shards of tp_e GPUs share the same n_gpus GPUs;
// n_micro_batches is 1. "predicted" is optional (a hand-written plan may omit it).
//
// Values only; thread-compatible. load_deployment_plan reads a file (blocks on I/O).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::planner {

enum class PlanKind { kDisaggregated, kColocated };
const char* plan_kind_name(PlanKind kind);  // "disaggregated", "colocated"

struct PlanPrediction {
  double t_a_ms = 0, t_e_ms = 0, t_c_ms = 0;  // per layer, per micro-batch
  double tbt_ms = 0;                          // one decode step
  double global_batch = 0;                    // sequences decoding at once, all workers
  double tokens_per_s = 0, tokens_per_s_per_gpu = 0, tokens_per_s_per_cost = 0;
  int64_t n_gpus = 0;
  double cost = 0;  // sum of normalized GPU prices
};

struct DeploymentPlan {
  PlanKind kind = PlanKind::kDisaggregated;
  std::string model;  // model_type (informational)
  std::string attention_gpu, expert_gpu;
  int64_t tp_a = 1, tp_e = 1;
  int64_t n_attention_workers = 1;  // M
  int64_t n_expert_workers = 1;     // N
  int64_t n_micro_batches = 1;      // m
  int64_t micro_batch_size = 1;     // b_a: sequences per micro-batch per attention worker
  int64_t max_num_seqs = 1;         // per attention worker: m · b_a
  double avg_seq_len = 0;           // what the KV sizing assumed
  double slo_tbt_ms = 0;            // the SLO the plan was searched under
  bool has_prediction = false;
  PlanPrediction predicted;

  int64_t n_gpus() const {
    return kind == PlanKind::kColocated ? n_attention_workers * tp_a
                                        : n_attention_workers * tp_a + n_expert_workers * tp_e;
  }
};

nlohmann::json deployment_plan_to_json(const DeploymentPlan& plan);
// Validates every field; errors name it ("plan field 'tp_a' must be an integer >= 1, got 0").
Result<DeploymentPlan> deployment_plan_from_json(const nlohmann::json& j);
// Reads and validates a plan file; errors name the file.
Result<DeploymentPlan> load_deployment_plan(const std::filesystem::path& path);
// Writes the plan as indented JSON; IoError names the file.
Status save_deployment_plan(const DeploymentPlan& plan, const std::filesystem::path& path);

}  // namespace msi::planner

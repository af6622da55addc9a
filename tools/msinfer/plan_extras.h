// The other modes of `msinfer plan` (cmd_plan.cc): --predict evaluates the performance model for
// one given deployment (to check it against `msinfer bench`), --simulate runs the discrete-event
// pipeline simulator (planner/pipeline_sim.h) on a disaggregated prediction, and --expert-load
// proposes an expert placement that replicates hot experts (planner/expert_balance.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "planner/perf_model.h"

namespace msi::cli {

// A deployment to predict: "colocated:G" (G GPUs of the attention GPU type, experts spread over
// them) or "disaggregated:NA:NE" (NA attention GPUs, NE expert GPUs).
struct PredictSpec {
  bool disaggregated = false;
  int n_a = 1, n_e = 1, n_gpus = 1;
};
Result<PredictSpec> parse_predict_spec(const std::string& text);

struct PredictArgs {
  PredictSpec spec;
  int64_t batch_size = 0;  // sequences decoding at once, over the whole deployment
  int micro_batches = 2;   // m (disaggregated)
  double seq_len = 1024;
  double slo_ms = 150;
  double memory_fraction = 0.9;
};
// The prediction as JSON (T_a, T_e, T_c, TBT, throughput, the first violated constraint) plus,
// for a disaggregated deployment, the simulator's step under the same stage times.
Result<nlohmann::json> predict_deployment(const planner::ModelShape& model,
                                          const planner::GpuSide& attention,
                                          const planner::GpuSide& expert, const PredictArgs& args);

// The simulator on a disaggregated prediction: its step, and the closed form beside it.
Result<nlohmann::json> simulate_prediction(const planner::ModelShape& model,
                                           const planner::Prediction& p, int n_a, int n_e, int m,
                                           double b_a);

// The greedy placement for `n_expert_workers` from an expert-load file (`msinfer bench --json`'s
// "expert_load", or `GET /expert_load` of the server): the report (placement, loads before and
// after). slots_per_worker 0: ceil(E / N) + 1.
Result<nlohmann::json> propose_placement(const std::string& load_file, int n_expert_workers,
                                         int slots_per_worker);

}  // namespace msi::cli

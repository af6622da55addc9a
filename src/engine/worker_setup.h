// What every worker of a deployment derives from the model directory and the engine options —
// config, maximum length, expert placement, the weight source, M2N group options — whether the
// workers are threads of one process (engine.h) or processes (process_deployment.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "comm/m2n.h"
#include "engine/attention_runner.h"
#include "engine/engine_options.h"
#include "roles/expert_placement.h"
#include "roles/attention_worker.h"
#include "roles/colocated_expert_link.h"
#include "roles/expert_worker.h"
#include "model/safetensors.h"

namespace msi {

inline constexpr int kMaxMicroBatches = 8;

struct WorkerSetup {
  ModelConfig config;
  int64_t max_model_len = 0;
  ExpertPlacement placement;
  std::unique_ptr<TensorSource> source;
};

Result<WorkerSetup> open_worker_setup(const std::filesystem::path& model_dir, const EngineOptions& options);

// `config` must outlive the worker (it is kept by reference).
Result<std::unique_ptr<AttentionWorker>> make_attention_worker(const ModelConfig& config, const WorkerSetup& setup,
                                                               Backend& backend, const EngineOptions& options);
Result<std::unique_ptr<ExpertWorker>> make_expert_worker(const ModelConfig& config, const WorkerSetup& setup,
                                                         Backend& backend, const EngineOptions& options, int index);

// Colocated experts (n_expert_workers == 0): every expert of the model on the attention worker's
// own backend, behind an ExpertLink that never leaves the device.
Result<std::unique_ptr<ColocatedExpertLink>> make_colocated_link(const ModelConfig& config, const WorkerSetup& setup,
                                                                 Backend& backend, const EngineOptions& options);

// The device of attention worker `index` / expert worker `index` (EngineOptions' device lists).
std::string attention_device(const EngineOptions& options, int index);
std::string expert_device(const EngineOptions& options, int index);

comm::M2NOptions dispatch_options(const ModelConfig& config, const EngineOptions& options);
comm::M2NOptions combine_options(const ModelConfig& config, const EngineOptions& options);
RunnerOptions runner_options(const EngineOptions& options, int64_t max_model_len, uint64_t seed);

std::string attention_label(int index);  // "attention worker 0"
std::string expert_label(int index);     // "expert worker 0"

// The error to report when workers failed: a worker's own failure (not a peer being gone or
// silent, which follows from another's failure) first, attention workers before expert workers;
// OK if all are OK.
Status first_root_error(const std::vector<Status>& attention, const std::vector<Status>& experts);

}  // namespace msi

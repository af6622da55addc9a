// Engine: one deployment of the role-split model inside this process — M attention workers and
// N expert workers, each on its own thread, connected by two in-process M2N groups (dispatch
// M→N, combine N→M) — and offline generation over it. (The same roles run as separate processes
// over shared memory through engine/process_deployment.h.)
//
// There is exactly one forward path: attention-side layers hand routed tokens to expert workers
// through an ExpertLink, whatever the placement. Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "engine/generate_types.h"
#include "model/config.h"
#include "pipeline/timeline.h"
#include "roles/attention_worker.h"
#include "roles/expert_placement.h"
#include "roles/expert_worker.h"

namespace msi {

struct EngineOptions {
  std::string device = "cpu";
  std::string load_format = "auto";  // auto: safetensors from the model dir; dummy: random weights
  uint64_t dummy_seed = 0;
  nlohmann::json hf_overrides;       // merged over config.json (null: none)
  int n_attention_workers = 1;       // M
  int n_expert_workers = 1;          // N
  int n_micro_batches = 1;           // m
  int64_t max_batched_tokens = 8192;  // per attention worker and step
  int64_t max_seqs = 256;            // per attention worker and step
  int64_t kv_block_size = 16;
  int64_t kv_n_blocks = 0;           // per attention worker; required (> 0), see kv_blocks_needed()
  int64_t max_model_len = 0;         // 0: the model's max_position_embeddings
  std::chrono::milliseconds peer_timeout{60000};  // every M2N wait
  bool record_timeline = false;      // keep per-worker timelines (for --trace)
};

// Checks options that do not need the model: counts, micro-batches, KV sizes.
Status validate_engine_options(const EngineOptions& options);
// Resolves max_model_len against the config (0 → max_position_embeddings; larger → error).
Result<int64_t> resolve_max_model_len(const ModelConfig& config, const EngineOptions& options);

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const std::filesystem::path& model_dir,
                                                const EngineOptions& options);
  ~Engine();

  const ModelConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }
  // KV blocks in use over all attention workers (0 between generate() calls).
  int64_t kv_blocks_in_use() const;

  // Validates every request, spreads them over the attention workers (each to the one with the
  // fewest prompt tokens so far), runs the deployment until all are done, and returns the results
  // in request order. A failing worker fails the call with its error.
  Result<std::vector<GenerateResult>> generate(const std::vector<GenerateRequest>& requests);

  // Chrome trace of the last generate() (requires record_timeline).
  Status write_trace(const std::filesystem::path& path) const;

 private:
  Engine() = default;

  ModelConfig config_;
  EngineOptions options_;
  int64_t max_model_len_ = 0;
  ExpertPlacement placement_;
  std::vector<std::unique_ptr<Backend>> attention_backends_, expert_backends_;
  std::vector<std::unique_ptr<AttentionWorker>> attention_;
  std::vector<std::unique_ptr<ExpertWorker>> experts_;
  std::vector<std::unique_ptr<Timeline>> timelines_;
  uint64_t generation_ = 0;
};

// Assigns each request to the attention worker with the fewest prompt tokens so far (ties: the
// lowest index). Returns the worker of each request.
std::vector<int> assign_requests(const std::vector<GenerateRequest>& requests, int n_workers);

}  // namespace msi

// Engine: one deployment of the role-split model on this process — attention worker(s), expert
// worker(s) and the links between them — and offline generation over it.
//
// There is exactly one forward path: every step runs attention-side layers that hand routed
// tokens to expert workers through an ExpertLink, even when everything sits on one device.
// Not thread-safe: one thread calls generate() at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/config.h"
#include "roles/attention_worker.h"
#include "roles/expert_placement.h"
#include "roles/expert_worker.h"
#include "roles/local_expert_link.h"
#include "sched/sampling.h"

namespace msi {

struct EngineOptions {
  std::string device = "cpu";
  std::string load_format = "auto";  // auto: safetensors from the model dir; dummy: random weights
  uint64_t dummy_seed = 0;
  nlohmann::json hf_overrides;       // merged over config.json (null: none)
  int64_t n_expert_workers = 1;
  int n_micro_batches = 1;
  int64_t max_batched_tokens = 8192;
  int64_t max_seqs = 256;
  int64_t kv_block_size = 16;
  int64_t kv_n_blocks = 0;           // required (> 0); see kv_blocks_needed()
  int64_t max_model_len = 0;         // 0: the model's max_position_embeddings
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  bool return_logits = false;
};

struct GenerateResult {
  std::vector<int32_t> output_ids;
  std::string finish_reason;  // "length" | "stop"
  std::vector<std::vector<float>> logits;  // [n_output, vocab] with return_logits
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const std::filesystem::path& model_dir,
                                                const EngineOptions& options);
  ~Engine();

  const ModelConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }
  const AttentionWorker& attention_worker() const { return *attention_; }

  // Runs all requests together (continuous batching of prefill chunks and decodes) until each
  // stops. Validates every request first: an empty prompt, a prompt of max_model_len tokens or
  // more, or a token id outside the vocabulary fails the whole call before any work.
  Result<std::vector<GenerateResult>> generate(const std::vector<GenerateRequest>& requests);

 private:
  Engine() = default;
  Status run_step(std::span<const SeqChunk> chunks, int64_t step, float* logits);

  ModelConfig config_;
  EngineOptions options_;
  int64_t max_model_len_ = 0;
  std::unique_ptr<Backend> backend_;
  ExpertPlacement placement_;
  std::unique_ptr<AttentionWorker> attention_;
  std::vector<std::unique_ptr<ExpertWorker>> experts_;
  std::unique_ptr<LocalExpertLink> link_;
  std::vector<float> logits_host_;  // [max_seqs, vocab]
  int64_t next_seq_id_ = 0;
  int64_t next_step_ = 0;
};

// KV blocks that hold every request to completion: Σ ceil(min(prompt + max_tokens, max_len) / block).
int64_t kv_blocks_needed(const std::vector<GenerateRequest>& requests, int64_t max_model_len,
                         int64_t block_size);

}  // namespace msi

// Offline generation requests and results.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/config.h"
#include "sched/sampling.h"

namespace msi {

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  bool return_logits = false;
};

struct GenerateResult {
  std::vector<int32_t> output_ids;
  std::string finish_reason;               // "length" | "stop"
  std::vector<std::vector<float>> logits;  // [n_output, vocab] with return_logits
};

// Checks every request before any work: a non-empty prompt shorter than max_model_len, token
// ids inside the vocabulary, max_tokens ≥ 1. The error names the request's index.
Status validate_requests(const ModelConfig& config, int64_t max_model_len,
                         const std::vector<GenerateRequest>& requests);

// KV blocks that hold every request to completion: Σ ceil(min(prompt + max_tokens, max_len) / block).
int64_t kv_blocks_needed(const std::vector<GenerateRequest>& requests, int64_t max_model_len,
                         int64_t block_size);

}  // namespace msi

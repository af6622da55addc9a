#include "engine/generate_types.h"

#include <algorithm>

namespace msi {

Status validate_requests(const ModelConfig& config, int64_t max_model_len,
                         const std::vector<GenerateRequest>& requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& p = requests[i].prompt;
    if (p.empty()) return error(StatusCode::kInvalidArgument, "prompt {} is empty", i);
    if (static_cast<int64_t>(p.size()) >= max_model_len) {
      return error(StatusCode::kOutOfRange, "prompt {} has {} tokens; the maximum model length is {}", i,
                   p.size(), max_model_len);
    }
    for (int32_t tok : p) {
      if (tok < 0 || tok >= config.vocab_size) {
        return error(StatusCode::kOutOfRange, "prompt {}: token id {} is outside the vocabulary [0, {})", i,
                     tok, config.vocab_size);
      }
    }
    if (requests[i].sampling.max_tokens < 1) {
      return error(StatusCode::kInvalidArgument, "request {}: max_tokens must be at least 1", i);
    }
  }
  return Status::ok();
}

int64_t kv_blocks_needed(const std::vector<GenerateRequest>& requests, int64_t max_model_len,
                         int64_t block_size) {
  int64_t blocks = 0;
  for (const GenerateRequest& r : requests) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.sampling.max_tokens,
                                          max_model_len);
    blocks += (len + block_size - 1) / block_size;
  }
  return std::max<int64_t>(blocks, 1);
}

}  // namespace msi

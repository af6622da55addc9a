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

nlohmann::json request_to_json(const GenerateRequest& r) {
  const SamplingParams& s = r.sampling;
  return {{"prompt", r.prompt},
          {"temperature", s.temperature},
          {"top_p", s.top_p},
          {"top_k", s.top_k},
          {"seed", s.seed},
          {"has_seed", s.has_seed},
          {"max_tokens", s.max_tokens},
          {"ignore_eos", s.ignore_eos},
          {"return_logits", r.return_logits}};
}

Result<GenerateRequest> request_from_json(const nlohmann::json& j) {
  try {
    GenerateRequest r;
    r.prompt = j.at("prompt").get<std::vector<int32_t>>();
    r.sampling.temperature = j.at("temperature").get<float>();
    r.sampling.top_p = j.at("top_p").get<float>();
    r.sampling.top_k = j.at("top_k").get<int64_t>();
    r.sampling.seed = j.at("seed").get<uint64_t>();
    r.sampling.has_seed = j.at("has_seed").get<bool>();
    r.sampling.max_tokens = j.at("max_tokens").get<int64_t>();
    r.sampling.ignore_eos = j.at("ignore_eos").get<bool>();
    r.return_logits = j.at("return_logits").get<bool>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "bad request JSON: {}", e.what());
  }
}

nlohmann::json result_to_json(const GenerateResult& r) {
  return {{"output_ids", r.output_ids}, {"finish_reason", r.finish_reason}, {"logits", r.logits}};
}

Result<GenerateResult> result_from_json(const nlohmann::json& j) {
  try {
    GenerateResult r;
    r.output_ids = j.at("output_ids").get<std::vector<int32_t>>();
    r.finish_reason = j.at("finish_reason").get<std::string>();
    r.logits = j.at("logits").get<std::vector<std::vector<float>>>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "bad result JSON: {}", e.what());
  }
}

}  // namespace msi

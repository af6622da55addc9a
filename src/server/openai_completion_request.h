// The request of POST /v1/completions, parsed and validated from its JSON body.
//
// "prompt" takes the four OpenAI forms; each prompt of a batch becomes one choice, whose "index" is
// the prompt's position:
//   "text"              → one text prompt
//   ["a", "b"]          → two text prompts
//   [1, 2, 3]           → one token-id prompt
//   [[1, 2], [3]]       → two token-id prompts
// An empty string or list anywhere is 400 "prompt is empty" ("prompt[1] is empty" for an element).
//
// Owns nothing but values; parsing is a pure function (thread-safe; allocates results).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/openai_error.h"
#include "server/openai_sampling.h"

namespace msi::openai {

inline constexpr int64_t kCompletionDefaultMaxTokens = 16;  // OpenAI's default for completions

struct PromptInput {
  bool is_tokens = false;          // which of the two below holds the prompt
  std::string text;                // !is_tokens: to be tokenized (with special tokens)
  std::vector<int32_t> token_ids;  // is_tokens: non-empty, each in [0, INT32_MAX]
};

struct CompletionRequest {
  std::string model;
  std::vector<PromptInput> prompts;  // ≥ 1
  // max_tokens: 16 when absent (OpenAI), nullopt for an explicit null (no limit: the server
  // fills max_model_len - prompt_len, like vLLM).
  SamplingOptions sampling;
  // "logprobs": the number of top alternatives per generated token, [0, kMaxLogprobs];
  // nullopt: no logprobs in the response.
  std::optional<int64_t> logprobs;
  StreamOptions stream;
};

// Parses the body of POST /v1/completions. Besides the shared knobs (openai_sampling.h) it rejects
// "suffix", "echo": true, "best_of" ≠ 1 and "prompt_logprobs" as unsupported. Every error is 400
// with a message naming the field. Unknown fields are ignored.
ApiResult<CompletionRequest> parse_completion_request(const ordered_json& body);

}  // namespace msi::openai

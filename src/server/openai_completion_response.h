// Response builders of POST /v1/completions: the full response, stream chunks and the usage chunk.
//
//   {"id": "cmpl-…", "object": "text_completion", "created": 1700000000, "model": "m",
//    "choices": [{"index": 0, "text": "…", "logprobs": null | {"tokens": [...],
//                 "token_logprobs": [...], "top_logprobs": [{"tok": lp, ...}, ...],
//                 "text_offset": [...]},
//                 "finish_reason": "stop" | "length" | null, "stop_reason": null | id | "str"}],
//    "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}
//
// A stream chunk has the same head and one choice (text is the delta; finish_reason is null
// until the choice's last chunk) and no "usage"; with include_usage the stream ends with
// completion_usage_chunk ("choices": []).
//
// Owns nothing but values; pure functions (thread-safe; they allocate the JSON they return).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "server/openai_response.h"

namespace msi::openai {

inline constexpr const char* kCompletionObject = "text_completion";

struct CompletionChoice {
  int64_t index = 0;  // the prompt's position in the request
  std::string text;   // the whole text (response) or the new text (stream chunk)
  // nullopt: "logprobs": null (not requested). Else one entry per generated token of `text`.
  std::optional<std::vector<TokenLogprob>> logprobs;
  // Where `text` starts within the choice's full text, in code points (Python's len(), as in
  // vLLM): 0 for a response; the length already streamed for a chunk. "text_offset"[i] is this
  // plus the code points of tokens 0..i-1.
  int64_t text_offset = 0;
  // "stop" | "length" | "abort"…; nullopt → null (stream chunks before the last). Always set in
  // a full response.
  std::optional<std::string> finish_reason;
  StopReason stop_reason;
};

// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} for one choice. Each token's
// top_logprobs becomes an object {token: logprob} in the given order (a repeated token text
// keeps its first logprob). Logprobs are clamped (clamp_logprob).
ordered_json completion_logprobs_json(std::span<const TokenLogprob> tokens, int64_t text_offset);

ordered_json completion_response(const ResponseMeta& meta,
                                 std::span<const CompletionChoice> choices, const Usage& usage);
ordered_json completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice);
ordered_json completion_usage_chunk(const ResponseMeta& meta, const Usage& usage);

// The number of code points in UTF-8 `text` (bytes that do not continue a sequence).
int64_t utf8_length(std::string_view text);

}  // namespace msi::openai

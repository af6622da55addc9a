// The generation knobs that /v1/completions and /v1/chat/completions share: sampling, stopping and
// streaming. Parsed from a request body with the defaults of the OpenAI API; knobs msinfer does
// not implement are accepted only at their neutral value (else 400 naming the field), so that no
// request is silently served with different semantics. Unknown fields are ignored, like vLLM.
//
// Owns nothing but values; parsing is a pure function (thread-safe; allocates results).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/openai_error.h"

namespace msi::openai {

inline constexpr int64_t kMaxLogprobs = 20;  // top alternatives per token, like vLLM's default

struct SamplingOptions {
  // Generated-token limit. nullopt: none given, the server fills max_model_len - prompt_len.
  std::optional<int64_t> max_tokens;
  double temperature = 1.0;             // [0, 2]; 0 is greedy
  double top_p = 1.0;                   // (0, 1]
  int64_t top_k = -1;                   // ≥ -1; -1 and 0 mean off (kept as given)
  std::optional<int64_t> seed;          // any int64; nullopt: unseeded
  std::vector<std::string> stop;        // non-empty stop strings; excluded from the output text
  std::vector<int32_t> stop_token_ids;  // in [0, INT32_MAX]; the server checks the vocabulary
  bool ignore_eos = false;
  int64_t min_tokens = 0;  // [0, max_tokens]: EOS and stops are ignored before this many tokens
};

struct StreamOptions {
  bool stream = false;
  // From "stream_options": {"include_usage": true}; only valid with stream. When set, the last
  // SSE event before [DONE] is a usage chunk ("choices": []).
  bool include_usage = false;
};

// Reads temperature, top_p, top_k, seed, stop, stop_token_ids, ignore_eos, min_tokens and n from
// the body, and rejects unsupported knobs: n ≠ 1 ("n > 1 is not supported"), presence_penalty or
// frequency_penalty ≠ 0, repetition_penalty ≠ 1, min_p ≠ 0, a non-empty logit_bias.
// `max_tokens` is the endpoint's resolved limit (the endpoints spell it differently); it is stored
// as given and bounds min_tokens. Requires body to be an object.
ApiResult<SamplingOptions> parse_sampling_options(const ordered_json& body,
                                                  std::optional<int64_t> max_tokens);

// Reads "stream" (bool) and "stream_options" (an object; only with "stream": true, else 400).
ApiResult<StreamOptions> parse_stream_options(const ordered_json& body);

}  // namespace msi::openai

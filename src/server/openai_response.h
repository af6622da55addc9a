// What every OpenAI response builder shares: the response head (id, object, created, model), token
// usage, stop reasons and per-token logprob entries. The builders (openai_completion_response.h,
// openai_chat_response.h) take these plain structs and return nlohmann::ordered_json whose keys
// are in the OpenAI/vLLM order, so that the dumped text is byte-stable for a given input.
//
// Owns nothing but values; pure functions (thread-safe; they allocate the JSON they return).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace msi::openai {

using ordered_json = nlohmann::ordered_json;

struct ResponseMeta {
  std::string id;       // "cmpl-…" or "chatcmpl-…" (openai_request_id.h); one per request
  int64_t created = 0;  // unix seconds; the same in every chunk of a stream
  std::string model;    // the served model name, as the request gave it
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // total_tokens is their sum
};

// Why generation stopped, beyond finish_reason (vLLM's "stop_reason"): null (EOS, length, or
// still running), the stop token id that ended it, or the stop string that matched.
using StopReason = std::variant<std::monostate, int64_t, std::string>;

struct TopLogprob {
  std::string token;  // the token's text; raw bytes, possibly not valid UTF-8 (see below)
  double logprob = 0;
};

// One generated token's logprob and its top alternatives (in the order to emit, usually by
// decreasing logprob; the caller decides whether the sampled token is among them).
// NOTE: a byte-level BPE token can be part of a UTF-8 character. `token` holds its raw bytes; chat
// responses also emit them as "bytes": [ints], and openai_protocol.h's json_text() replaces
// invalid UTF-8 with U+FFFD when dumping.
struct TokenLogprob {
  std::string token;
  double logprob = 0;
  std::vector<TopLogprob> top_logprobs;
};

// Logprobs as emitted: -inf, NaN and anything below -9999 become -9999.0 (JSON has no -inf;
// vLLM clamps the same way).
double clamp_logprob(double logprob);

// {"prompt_tokens", "completion_tokens", "total_tokens"}.
ordered_json usage_json(const Usage& usage);

// null, the token id, or the string.
ordered_json stop_reason_json(const StopReason& reason);

// {"id", "object": object, "created", "model"}: the first keys of every response and chunk.
ordered_json response_head(const ResponseMeta& meta, const char* object);

// The final chunk of a stream with include_usage:
// {"id", "object": object, "created", "model", "choices": [], "usage": {...}}.
ordered_json usage_chunk(const ResponseMeta& meta, const char* object, const Usage& usage);

}  // namespace msi::openai

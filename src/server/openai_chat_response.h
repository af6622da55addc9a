// Response builders of POST /v1/chat/completions: the full response, stream chunks and the usage
// chunk.
//
//   {"id": "chatcmpl-…", "object": "chat.completion", "created", "model",
//    "choices": [{"index": 0,
//                 "message": {"role": "assistant", "content": "…",
//                             "reasoning_content"?: "…", "tool_calls"?: [...]},
//                 "logprobs": null | {"content": [{"token", "logprob", "bytes": [...],
//                                                  "top_logprobs": [{"token", "logprob",
//                                                                    "bytes"}]}]},
//                 "finish_reason": "stop" | "length" | "tool_calls", "stop_reason": …}],
//    "usage": {...}}
//
// "reasoning_content" and "tool_calls" appear only when set / non-empty; "content" is null when
// empty and there are tool calls (as OpenAI does).
//
// A stream is "object": "chat.completion.chunk" with one choice {"index", "delta", "logprobs",
// "finish_reason", "stop_reason"} per chunk and no "usage":
//   1. chat_role_chunk: delta {"role": "assistant", "content": ""};
//   2. chat_chunk with delta {"content": "<new text>"} (and its logprobs), any number;
//   3. chat_chunk with delta {} and finish_reason set;
//   4. with include_usage, chat_usage_chunk ("choices": []).
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

inline constexpr const char* kChatObject = "chat.completion";
inline constexpr const char* kChatChunkObject = "chat.completion.chunk";

// {"id", "type": "function", "function": {"name", "arguments"}}; in a delta "index" comes first.
struct ToolCall {
  std::string id;  // "chatcmpl-tool-…" or as the parser chose
  std::string name;
  std::string arguments;  // JSON text, as OpenAI sends it
};

struct ChatChoice {
  int64_t index = 0;
  std::string content;
  std::optional<std::string> reasoning_content;       // emitted only when set
  std::vector<ToolCall> tool_calls;                   // emitted only when non-empty
  std::optional<std::vector<TokenLogprob>> logprobs;  // nullopt: "logprobs": null
  std::string finish_reason;                          // "stop" | "length" | "tool_calls" | …
  StopReason stop_reason;
};

// A stream delta: each key is emitted only when set / non-empty, in the order role, content,
// reasoning_content, tool_calls; all unset gives {}.
struct ChatDelta {
  std::optional<std::string> role;
  std::optional<std::string> content;
  std::optional<std::string> reasoning_content;
  std::vector<ToolCall> tool_calls;  // tool_calls[j] is emitted with "index": j
};

struct ChatChunkChoice {
  int64_t index = 0;
  ChatDelta delta;
  std::optional<std::vector<TokenLogprob>> logprobs;  // the delta's tokens; nullopt: null
  std::optional<std::string> finish_reason;           // nullopt → null (all but the last chunk)
  StopReason stop_reason;
};

// {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
// with bytes the token's raw bytes as integers 0..255; logprobs clamped (clamp_logprob).
ordered_json chat_logprobs_json(std::span<const TokenLogprob> tokens);

ordered_json chat_response(const ResponseMeta& meta, std::span<const ChatChoice> choices,
                           const Usage& usage);
ordered_json chat_chunk(const ResponseMeta& meta, const ChatChunkChoice& choice);
// The first chunk of choice `index`: delta {"role": "assistant", "content": ""}.
ordered_json chat_role_chunk(const ResponseMeta& meta, int64_t index);
ordered_json chat_usage_chunk(const ResponseMeta& meta, const Usage& usage);

}  // namespace msi::openai

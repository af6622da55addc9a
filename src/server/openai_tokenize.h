// POST /tokenize and POST /detokenize in vLLM's shape: the requests, parsed and validated, and
// their responses.
//
//   /tokenize   {"model"?, "prompt": "text", "add_special_tokens"?: true}
//            or {"model"?, "messages": [...], "add_generation_prompt"?: true, "tools"?,
//                "chat_template_kwargs"?, "add_special_tokens"?: false}
//            →  {"count": n, "max_model_len": m, "tokens": [ids]}
//   /detokenize {"model"?, "tokens": [ids]}  →  {"prompt": "text"}
//
// Owns nothing but values; pure functions (thread-safe; they allocate results).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "server/openai_error.h"

namespace msi::openai {

struct TokenizeRequest {
  std::optional<std::string> model;  // optional here (vLLM): nullopt means the served model
  bool is_chat = false;              // "messages" given rather than "prompt"
  std::string prompt;                // !is_chat; may be empty
  // Defaults as vLLM: true for a prompt, false for messages (the chat template writes them).
  bool add_special_tokens = true;
  ordered_json messages;              // is_chat: normalized as ChatRequest::messages
  bool add_generation_prompt = true;  // is_chat
  ordered_json tools;                 // is_chat: null or the list
  ordered_json chat_template_kwargs = ordered_json::object();  // is_chat
};

struct DetokenizeRequest {
  std::optional<std::string> model;
  std::vector<int32_t> tokens;  // may be empty; each in [0, INT32_MAX]
};

// Exactly one of "prompt" (a string) and "messages" is required; errors are 400 naming the field.
ApiResult<TokenizeRequest> parse_tokenize_request(const ordered_json& body);
ApiResult<DetokenizeRequest> parse_detokenize_request(const ordered_json& body);

// {"count": tokens.size(), "max_model_len": max_model_len, "tokens": [...]}.
ordered_json tokenize_response(std::span<const int32_t> tokens, int64_t max_model_len);
// {"prompt": text}.
ordered_json detokenize_response(const std::string& text);

}  // namespace msi::openai

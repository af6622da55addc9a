// The request of POST /v1/chat/completions, parsed and validated from its JSON body, and the
// pieces that POST /tokenize shares with it (messages, tools, chat_template_kwargs).
//
// Messages are normalized for the chat template, keeping every key and its order:
// - "role" must be a string among system, user, assistant, tool, developer;
// - "content" is a string, or a list of {"type": "text", "text": ...} parts, which become one
//   string (the texts joined by "\n", as vLLM does); other part types are 400;
// - "content" may be null or absent only in an assistant message that has "tool_calls";
// - "tool_calls", "tool_call_id", "name" and any other keys pass through unchanged.
//
// Owns nothing but values; parsing is a pure function (thread-safe; allocates results).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/openai_error.h"
#include "server/openai_sampling.h"

namespace msi::openai {

struct ChatRequest {
  std::string model;
  ordered_json messages;  // a non-empty array of normalized messages (see above)
  // "tools": null when absent; else the list exactly as given (key order kept), for the chat
  // template's `tools` variable. Each has "function" with a string "name".
  ordered_json tools;
  std::string tool_choice;  // "none" | "auto"; default "auto" with non-empty tools, else "none"
  ordered_json chat_template_kwargs = ordered_json::object();  // extra template variables
  bool add_generation_prompt = true;
  // max_tokens: "max_completion_tokens" if given, else "max_tokens", else nullopt (no limit:
  // the server fills max_model_len - prompt_len).
  SamplingOptions sampling;
  bool logprobs = false;     // per-token logprobs in the response
  int64_t top_logprobs = 0;  // [0, kMaxLogprobs] alternatives per token; requires logprobs
  StreamOptions stream;
};

// Validates and normalizes a "messages" value (see above); errors name `path`[i].
ApiResult<ordered_json> parse_chat_messages(const ordered_json& messages,
                                            std::string_view path = "messages");

// "tools" of `body`: null when absent or null; else a list of tool objects, returned unchanged.
ApiResult<ordered_json> read_tools(const ordered_json& body);

// "chat_template_kwargs" of `body`: an object ({} when absent or null).
ApiResult<ordered_json> read_chat_template_kwargs(const ordered_json& body);

// Parses the body of POST /v1/chat/completions: the shared knobs (openai_sampling.h) plus the
// fields above. "tool_choice" other than "none"/"auto", "response_format" other than text,
// "chat_template" and "continue_final_message": true are 400 (unsupported). Every error is 400
// with a message naming the field. Unknown fields are ignored.
ApiResult<ChatRequest> parse_chat_request(const ordered_json& body);

}  // namespace msi::openai

// The environment transformers' apply_chat_template renders chat templates in, on top of the
// Jinja engine: trim_blocks + lstrip_blocks, the `raise_exception(message)` and
// `strftime_now(format)` globals, the special-token variables of tokenizer_config.json, and the
// render call `render(messages=..., tools=..., documents=None, add_generation_prompt=...,
// **special_tokens, **extra)`.
//
// Stateless; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/jinja/template.h"

namespace msi::jinja {

// trim_blocks and lstrip_blocks, as transformers configures its environment.
Options hf_chat_options();

// transformers' special_tokens_map from a tokenizer_config.json: bos/eos/unk/sep/pad/cls/mask
// tokens that are set (strings, or AddedToken objects reduced to their "content") and
// additional_special_tokens (a list of strings) when non-empty.
nlohmann::ordered_json hf_special_tokens(const nlohmann::ordered_json& tokenizer_config);

struct HfChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null: none (the template sees tools=None)
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();  // e.g. enable_thinking
};

// Renders `request` with `special_tokens` ({"bos_token": "<s>", ...}) as transformers does;
// extra_context overrides special tokens. Errors are the template's ("line N: <message>"),
// raise_exception's message included.
Result<std::string> render_hf_chat(const Template& t, const nlohmann::ordered_json& special_tokens,
                                   const HfChatRequest& request);

}  // namespace msi::jinja

// ChatTemplate: a model's chat template (tokenizer_config.json "chat_template" — a string, or a
// list of {"name", "template"} where "default" is used — or chat_template.jinja), rendered the
// way transformers' apply_chat_template does: Jinja with trim_blocks and lstrip_blocks, the
// loopcontrols extension, `raise_exception`, `strftime_now`, transformers' `tojson`, and the
// special tokens of tokenizer_config.json (bos_token, eos_token, ...) in the context.
//
// Immutable after load; render is thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi {

namespace jinja {
class Template;
}

// Ordered JSON throughout: the template sees the caller's key order (tojson of a tool definition
// must list its keys as the client sent them, like transformers).
struct ChatRenderOptions {
  bool add_generation_prompt = true;
  nlohmann::ordered_json tools;          // null: none (a list of OpenAI tool definitions otherwise)
  nlohmann::ordered_json extra_context;  // extra variables, e.g. {"enable_thinking": false}
};

class ChatTemplate {
 public:
  // NotFound if the model ships no template; InvalidArgument with the line for a syntax error.
  static Result<ChatTemplate> load(const std::filesystem::path& model_dir);
  // `special_tokens`: {"bos_token": "<s>", "eos_token": "</s>", ...} as strings.
  static Result<ChatTemplate> from_source(std::string source, nlohmann::json special_tokens);

  // messages: an OpenAI-style list of {"role", "content", ...}. Template errors (including
  // raise_exception) are InvalidArgument naming the template line.
  Result<std::string> render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  nlohmann::json special_tokens_;
  std::shared_ptr<const jinja::Template> template_;
};

}  // namespace msi

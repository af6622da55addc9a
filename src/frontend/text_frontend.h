// TextFrontend: what turns user text into token ids and token ids back into text for one model —
// its tokenizer and chat template — shared by `generate`, `tokenize` and (later) the server.
//
// Immutable after load; thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace msi {

class TextFrontend {
 public:
  // Loads DIR/tokenizer.json (required) and the chat template (optional: chats then fail).
  static Result<std::unique_ptr<TextFrontend>> load(const std::filesystem::path& model_dir);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_chat_template() const { return chat_.has_value(); }

  // Like tokenizer(text).input_ids: with the post-processor's special tokens unless told not to.
  Result<std::vector<int32_t>> encode_text(const std::string& text, bool add_special_tokens = true) const;
  // Like apply_chat_template(messages, add_generation_prompt=True, tokenize=True): render, then
  // encode without adding special tokens (the template writes them).
  Result<std::vector<int32_t>> encode_chat(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const;
  Result<std::string> render_chat(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const;
  // Like decode(ids, skip_special_tokens=True).
  Result<std::string> decode_output(std::span<const int32_t> ids) const;

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<ChatTemplate> chat_;
};

// Parses an OpenAI messages file: a list of messages, or a list of such lists (several chats).
// Each message needs a string "role"; errors name the file and the message index.
Result<std::vector<nlohmann::ordered_json>> read_chats_file(const std::filesystem::path& path);

}  // namespace msi

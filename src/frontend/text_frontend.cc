#include "frontend/text_frontend.h"

#include <fstream>

#include "model/config.h"

namespace msi {

Result<std::unique_ptr<TextFrontend>> TextFrontend::load(const std::filesystem::path& model_dir) {
  auto f = std::unique_ptr<TextFrontend>(new TextFrontend());
  MSI_ASSIGN_OR_RETURN(f->tokenizer_, Tokenizer::load(model_dir));
  Result<ChatTemplate> chat = ChatTemplate::load(model_dir);
  if (chat.is_ok()) {
    f->chat_ = std::move(chat).value();
  } else if (chat.status().code() != StatusCode::kNotFound) {
    return chat.status();  // a template that is there but broken is an error now, not later
  }
  return f;
}

Result<std::vector<int32_t>> TextFrontend::encode_text(const std::string& text, bool add_special_tokens) const {
  return tokenizer_->encode(text, add_special_tokens);
}

Result<std::string> TextFrontend::render_chat(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const {
  if (!chat_) return error(StatusCode::kInvalidArgument, "the model has no chat template");
  return chat_->render(messages, options);
}

Result<std::vector<int32_t>> TextFrontend::encode_chat(const nlohmann::ordered_json& messages,
                                                       const ChatRenderOptions& options) const {
  MSI_ASSIGN_OR_RETURN(std::string text, render_chat(messages, options));
  return tokenizer_->encode(text, /*add_special_tokens=*/false);
}

Result<std::string> TextFrontend::decode_output(std::span<const int32_t> ids) const {
  return tokenizer_->decode(ids, /*skip_special_tokens=*/true);
}

namespace {

Status check_messages(const nlohmann::ordered_json& messages, const std::string& where) {
  if (!messages.is_array() || messages.empty()) {
    return error(StatusCode::kInvalidArgument, "{}: a chat is a non-empty list of messages", where);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return error(StatusCode::kInvalidArgument, "{}: message {} needs a string \"role\"", where, i);
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<nlohmann::ordered_json>> read_chats_file(const std::filesystem::path& path) {
  // Parsed again as ordered JSON: the chat template must see the file's key order.
  MSI_RETURN_IF_ERROR(read_json_file(path).status());
  std::ifstream in(path, std::ios::binary);
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(in, nullptr, false);
  if (j.is_discarded()) return error(StatusCode::kInvalidArgument, "{} is not valid JSON", path.string());
  std::vector<nlohmann::ordered_json> chats;
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    for (size_t c = 0; c < j.size(); ++c) {
      MSI_RETURN_IF_ERROR(check_messages(j[c], fmt::format("{} chat {}", path.string(), c)));
      chats.push_back(j[c]);
    }
  } else {
    MSI_RETURN_IF_ERROR(check_messages(j, path.string()));
    chats.push_back(j);
  }
  return chats;
}

}  // namespace msi

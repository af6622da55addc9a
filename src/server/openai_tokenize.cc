#include "server/openai_tokenize.h"

#include "server/openai_chat_request.h"
#include "server/openai_fields.h"

namespace msi::openai {

ApiResult<TokenizeRequest> parse_tokenize_request(const ordered_json& body) {
  MSI_API_RETURN_IF_ERROR(check_body_is_object(body));
  TokenizeRequest r;
  MSI_API_ASSIGN_OR_RETURN(r.model, read_string(body, "model"));
  const bool has_prompt = body.contains("prompt") && !body["prompt"].is_null();
  const bool has_messages = body.contains("messages") && !body["messages"].is_null();
  if (has_prompt && has_messages) {
    return bad_request("give either 'prompt' or 'messages', not both", "messages");
  }
  if (!has_prompt && !has_messages) {
    return bad_request("either 'prompt' or 'messages' is required", "prompt");
  }
  r.is_chat = has_messages;
  MSI_API_ASSIGN_OR_RETURN(auto add_special, read_bool(body, "add_special_tokens"));
  r.add_special_tokens = add_special.value_or(!r.is_chat);
  if (!r.is_chat) {
    MSI_API_ASSIGN_OR_RETURN(r.prompt, read_required_string(body, "prompt"));
    return r;
  }
  MSI_API_ASSIGN_OR_RETURN(r.messages, parse_chat_messages(body["messages"]));
  MSI_API_ASSIGN_OR_RETURN(auto add_generation_prompt, read_bool(body, "add_generation_prompt"));
  r.add_generation_prompt = add_generation_prompt.value_or(true);
  MSI_API_ASSIGN_OR_RETURN(r.tools, read_tools(body));
  MSI_API_ASSIGN_OR_RETURN(r.chat_template_kwargs, read_chat_template_kwargs(body));
  return r;
}

ApiResult<DetokenizeRequest> parse_detokenize_request(const ordered_json& body) {
  MSI_API_RETURN_IF_ERROR(check_body_is_object(body));
  DetokenizeRequest r;
  MSI_API_ASSIGN_OR_RETURN(r.model, read_string(body, "model"));
  auto it = body.find("tokens");
  if (it == body.end() || it->is_null()) return bad_request("'tokens' is required", "tokens");
  MSI_API_ASSIGN_OR_RETURN(r.tokens, token_ids_value(*it, "tokens"));
  return r;
}

ordered_json tokenize_response(std::span<const int32_t> tokens, int64_t max_model_len) {
  ordered_json out = ordered_json::object();
  out["count"] = tokens.size();
  out["max_model_len"] = max_model_len;
  out["tokens"] = std::vector<int32_t>(tokens.begin(), tokens.end());
  return out;
}

ordered_json detokenize_response(const std::string& text) {
  ordered_json out = ordered_json::object();
  out["prompt"] = text;
  return out;
}

}  // namespace msi::openai

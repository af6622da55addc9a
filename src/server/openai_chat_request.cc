#include "server/openai_chat_request.h"

#include <algorithm>
#include <array>
#include <optional>

#include <fmt/format.h>

#include "server/openai_fields.h"

namespace msi::openai {
namespace {

constexpr std::array<std::string_view, 5> kRoles = {"system", "user", "assistant", "tool",
                                                    "developer"};

bool has_tool_calls(const ordered_json& message) {
  auto it = message.find("tool_calls");
  return it != message.end() && it->is_array() && !it->empty();
}

// A list of {"type": "text", "text": ...} parts → the texts joined by "\n".
ApiResult<std::string> join_text_parts(const ordered_json& parts, const std::string& path) {
  std::string joined;
  for (size_t j = 0; j < parts.size(); ++j) {
    const std::string part_path = index_path(path, j);
    const ordered_json& part = parts[j];
    if (!part.is_object()) {
      return bad_request(fmt::format("'{}' must be an object", part_path), part_path);
    }
    MSI_API_ASSIGN_OR_RETURN(std::string type, read_required_string(part, "type", part_path));
    if (type != "text") {
      const std::string type_path = field_path(part_path, "type");
      return bad_request(fmt::format("'{}' must be \"text\", got \"{}\" (other content parts are "
                                     "not supported)",
                                     type_path, type),
                         type_path);
    }
    MSI_API_ASSIGN_OR_RETURN(std::string text, read_required_string(part, "text", part_path));
    if (j > 0) joined += '\n';
    joined += text;
  }
  return joined;
}

ApiCheck check_tool_calls(const ordered_json& message, const std::string& path) {
  auto it = message.find("tool_calls");
  if (it == message.end() || it->is_null()) return std::nullopt;
  const std::string calls_path = field_path(path, "tool_calls");
  if (!it->is_array())
    return bad_request(fmt::format("'{}' must be a list", calls_path), calls_path);
  for (size_t j = 0; j < it->size(); ++j) {
    const std::string call_path = index_path(calls_path, j);
    const ordered_json& call = (*it)[j];
    if (!call.is_object()) {
      return bad_request(fmt::format("'{}' must be an object", call_path), call_path);
    }
    const std::string fn_path = field_path(call_path, "function");
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object()) {
      return bad_request(fmt::format("'{}' must be an object", fn_path), fn_path);
    }
    auto name = read_required_string(*fn, "name", fn_path);
    if (!name.is_ok()) return name.error();
  }
  return std::nullopt;
}

ApiResult<ordered_json> parse_message(const ordered_json& message, const std::string& path) {
  if (!message.is_object()) return bad_request(fmt::format("'{}' must be an object", path), path);
  MSI_API_ASSIGN_OR_RETURN(std::string role, read_required_string(message, "role", path));
  if (std::find(kRoles.begin(), kRoles.end(), role) == kRoles.end()) {
    const std::string role_path = field_path(path, "role");
    return bad_request(fmt::format("'{}' must be one of system, user, assistant, tool, developer; "
                                   "got \"{}\"",
                                   role_path, role),
                       role_path);
  }
  MSI_API_RETURN_IF_ERROR(check_tool_calls(message, path));
  for (const char* key : {"name", "tool_call_id"}) {
    auto s = read_string(message, key, path);
    if (!s.is_ok()) return s.error();
  }

  ordered_json out = message;
  const std::string content_path = field_path(path, "content");
  auto content = message.find("content");
  if (content == message.end() || content->is_null()) {
    if (role == "assistant" && has_tool_calls(message)) return out;
    if (content == message.end()) {
      return bad_request(fmt::format("'{}' is required", content_path), content_path);
    }
  } else if (content->is_string()) {
    return out;
  } else if (content->is_array()) {
    MSI_API_ASSIGN_OR_RETURN(std::string text, join_text_parts(*content, content_path));
    out["content"] = std::move(text);  // NOTE: assigning an existing key keeps its position
    return out;
  }
  return bad_request(fmt::format("'{}' must be a string or a list of text parts", content_path),
                     content_path);
}

ApiResult<std::string> read_tool_choice(const ordered_json& body, bool have_tools) {
  auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return std::string(have_tools ? "auto" : "none");
  if (it->is_object()) {
    return bad_request(
        "'tool_choice' naming a function is not supported (only \"none\" or "
        "\"auto\")",
        "tool_choice");
  }
  if (!it->is_string()) return bad_request("'tool_choice' must be a string", "tool_choice");
  const std::string choice = it->get<std::string>();
  if (choice != "none" && choice != "auto") {
    return bad_request(fmt::format("'tool_choice' \"{}\" is not supported (only \"none\" or "
                                   "\"auto\")",
                                   choice),
                       "tool_choice");
  }
  return choice;
}

// max_completion_tokens wins over max_tokens (its deprecated spelling), as in OpenAI and vLLM.
ApiResult<std::optional<int64_t>> read_chat_max_tokens(const ordered_json& body) {
  MSI_API_ASSIGN_OR_RETURN(auto max_tokens, read_int(body, "max_tokens", {.min = 1}));
  MSI_API_ASSIGN_OR_RETURN(auto max_completion,
                           read_int(body, "max_completion_tokens", {.min = 1}));
  return max_completion ? max_completion : max_tokens;
}

ApiCheck check_unsupported(const ordered_json& body) {
  auto tmpl = body.find("chat_template");
  if (tmpl != body.end() && !tmpl->is_null()) {
    return bad_request("'chat_template' is not supported", "chat_template");
  }
  auto cont = read_bool(body, "continue_final_message");
  if (!cont.is_ok()) return cont.error();
  if (cont->value_or(false)) {
    return bad_request("'continue_final_message' is not supported", "continue_final_message");
  }
  auto fmt_it = body.find("response_format");
  if (fmt_it != body.end() && !fmt_it->is_null()) {
    if (!fmt_it->is_object()) {
      return bad_request("'response_format' must be an object", "response_format");
    }
    auto type = read_string(*fmt_it, "type", "response_format");
    if (!type.is_ok()) return type.error();
    if (type->value_or("text") != "text") {
      return bad_request(fmt::format("'response_format.type' \"{}\" is not supported (only "
                                     "\"text\")",
                                     **type),
                         "response_format.type");
    }
  }
  return std::nullopt;
}

}  // namespace

ApiResult<ordered_json> parse_chat_messages(const ordered_json& messages, std::string_view path) {
  const std::string p(path);
  if (!messages.is_array()) return bad_request(fmt::format("'{}' must be a list", p), p);
  if (messages.empty()) return bad_request(fmt::format("'{}' must not be empty", p), p);
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    MSI_API_ASSIGN_OR_RETURN(ordered_json m, parse_message(messages[i], index_path(p, i)));
    out.push_back(std::move(m));
  }
  return out;
}

ApiResult<ordered_json> read_tools(const ordered_json& body) {
  auto it = body.find("tools");
  if (it == body.end() || it->is_null()) return ordered_json(nullptr);
  if (!it->is_array()) return bad_request("'tools' must be a list", "tools");
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string path = index_path("tools", i);
    const ordered_json& tool = (*it)[i];
    if (!tool.is_object()) return bad_request(fmt::format("'{}' must be an object", path), path);
    MSI_API_ASSIGN_OR_RETURN(auto type, read_string(tool, "type", path));
    if (type.value_or("function") != "function") {
      const std::string type_path = field_path(path, "type");
      return bad_request(fmt::format("'{}' must be \"function\", got \"{}\"", type_path, *type),
                         type_path);
    }
    const std::string fn_path = field_path(path, "function");
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) {
      return bad_request(fmt::format("'{}' must be an object", fn_path), fn_path);
    }
    auto name = read_required_string(*fn, "name", fn_path);
    if (!name.is_ok()) return name.error();
    auto params = fn->find("parameters");
    if (params != fn->end() && !params->is_null() && !params->is_object()) {
      const std::string params_path = field_path(fn_path, "parameters");
      return bad_request(fmt::format("'{}' must be an object", params_path), params_path);
    }
  }
  return *it;
}

ApiResult<ordered_json> read_chat_template_kwargs(const ordered_json& body) {
  auto it = body.find("chat_template_kwargs");
  if (it == body.end() || it->is_null()) return ordered_json::object();
  if (!it->is_object()) {
    return bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
  }
  return *it;
}

ApiResult<ChatRequest> parse_chat_request(const ordered_json& body) {
  MSI_API_RETURN_IF_ERROR(check_body_is_object(body));
  ChatRequest r;
  MSI_API_ASSIGN_OR_RETURN(r.model, read_required_string(body, "model"));
  auto messages = body.find("messages");
  if (messages == body.end() || messages->is_null()) {
    return bad_request("'messages' is required", "messages");
  }
  MSI_API_ASSIGN_OR_RETURN(r.messages, parse_chat_messages(*messages));

  MSI_API_ASSIGN_OR_RETURN(r.tools, read_tools(body));
  const bool have_tools = r.tools.is_array() && !r.tools.empty();
  MSI_API_ASSIGN_OR_RETURN(r.tool_choice, read_tool_choice(body, have_tools));
  MSI_API_ASSIGN_OR_RETURN(r.chat_template_kwargs, read_chat_template_kwargs(body));
  MSI_API_ASSIGN_OR_RETURN(auto add_generation_prompt, read_bool(body, "add_generation_prompt"));
  r.add_generation_prompt = add_generation_prompt.value_or(true);

  MSI_API_ASSIGN_OR_RETURN(auto max_tokens, read_chat_max_tokens(body));
  MSI_API_ASSIGN_OR_RETURN(r.sampling, parse_sampling_options(body, max_tokens));

  MSI_API_ASSIGN_OR_RETURN(auto logprobs, read_bool(body, "logprobs"));
  r.logprobs = logprobs.value_or(false);
  MSI_API_ASSIGN_OR_RETURN(auto top_logprobs, read_int(body, "top_logprobs", {0, kMaxLogprobs}));
  if (top_logprobs && !r.logprobs) {
    return bad_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
  }
  r.top_logprobs = top_logprobs.value_or(0);

  MSI_API_ASSIGN_OR_RETURN(r.stream, parse_stream_options(body));
  MSI_API_RETURN_IF_ERROR(check_unsupported(body));
  return r;
}

}  // namespace msi::openai

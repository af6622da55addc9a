#include "tokenizer/jinja/hf_chat.h"

#include <ctime>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/py_format.h"

namespace msi::jinja {

namespace {

constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

// A token as a string: itself, or an AddedToken object's "content"; empty if unset.
std::string token_content(const nlohmann::ordered_json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return "";
}

Result<Value> raise_exception(const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("raise_exception", a, {"message"}, 1));
  return Status(StatusCode::kInvalidArgument, py_str(b.get(0)));
}

// datetime.now().strftime(format).
Result<Value> strftime_now(const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("strftime_now", a, {"format"}, 1));
  MSI_ASSIGN_OR_RETURN(std::string format, arg_string("strftime_now", b.get(0)));
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return Value::string("");
  std::string buf(256 + format.size() * 8, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
  buf.resize(n);
  return Value::string(std::move(buf));
}

}  // namespace

Options hf_chat_options() {
  Options o;
  o.trim_blocks = true;
  o.lstrip_blocks = true;
  return o;
}

nlohmann::ordered_json hf_special_tokens(const nlohmann::ordered_json& tokenizer_config) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (!tokenizer_config.is_object()) return out;
  for (const char* key : kSpecialTokenKeys) {
    if (!tokenizer_config.contains(key)) continue;
    std::string content = token_content(tokenizer_config[key]);
    if (!content.empty()) out[key] = content;
  }
  auto extra = tokenizer_config.find("additional_special_tokens");
  if (extra != tokenizer_config.end() && extra->is_array() && !extra->empty()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& t : *extra) list.push_back(token_content(t));
    out["additional_special_tokens"] = list;
  }
  return out;
}

Result<std::string> render_hf_chat(const Template& t, const nlohmann::ordered_json& special_tokens,
                                   const HfChatRequest& request) {
  // render(messages=..., tools=..., documents=None, add_generation_prompt=...,
  //        **{**special_tokens_map, **kwargs})
  Variables context;
  context.emplace_back("messages", Value::from_json(request.messages));
  context.emplace_back("tools", Value::from_json(request.tools));
  context.emplace_back("documents", Value::none());
  context.emplace_back("add_generation_prompt", Value::boolean(request.add_generation_prompt));
  auto set = [&](const std::string& key, Value v) {
    for (auto& [k, existing] : context) {
      if (k == key) {
        existing = std::move(v);
        return;
      }
    }
    context.emplace_back(key, std::move(v));
  };
  if (special_tokens.is_object()) {
    for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it) {
      set(it.key(), Value::from_json(it.value()));
    }
  }
  if (!request.extra_context.is_null() && !request.extra_context.is_object()) {
    return error(StatusCode::kInvalidArgument, "extra chat template context must be a JSON object");
  }
  if (request.extra_context.is_object()) {
    for (auto it = request.extra_context.begin(); it != request.extra_context.end(); ++it) {
      const std::string& k = it.key();
      if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt") {
        return error(StatusCode::kInvalidArgument,
                     "render() got multiple values for keyword argument '{}'", k);
      }
      set(k, Value::from_json(it.value()));
    }
  }
  Variables globals;
  globals.emplace_back("raise_exception", Value::callable("raise_exception", raise_exception));
  globals.emplace_back("strftime_now", Value::callable("strftime_now", strftime_now));
  return t.render_values(context, globals);
}

}  // namespace msi::jinja

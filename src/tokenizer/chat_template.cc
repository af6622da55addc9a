#include "tokenizer/chat_template.h"

#include <fstream>
#include <sstream>

#include "tokenizer/jinja/hf_chat.h"
#include "tokenizer/jinja/template.h"

namespace msi {

namespace {

// "line 3: msg" → "chat template line 3: msg".
Status chat_error(const Status& st) {
  if (st.is_ok()) return st;
  const std::string& m = st.message();
  return Status(st.code(), m.rfind("line ", 0) == 0 ? "chat template " + m : "chat template: " + m);
}

Result<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kIoError, "cannot read {}", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<nlohmann::ordered_json> read_json(const std::filesystem::path& path) {
  MSI_ASSIGN_OR_RETURN(std::string text, read_text(path));
  nlohmann::ordered_json j =
      nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return error(StatusCode::kInvalidArgument, "{}: invalid JSON", path.string());
  return j;
}

// tokenizer_config.json's "chat_template": a string, or [{"name", "template"}] of which
// "default" is used. Empty if absent.
Result<std::string> config_template(const nlohmann::ordered_json& config,
                                    const std::filesystem::path& path) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const auto& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
    return error(StatusCode::kInvalidArgument, "{}: chat_template list has no \"default\" template",
                 path.string());
  }
  return error(StatusCode::kInvalidArgument, "{}: chat_template must be a string or a list",
               path.string());
}

// Converts the caller's JSON; an ordered_json keeps its key order, a json has sorted keys.
// NOTE: the ordered_json overload serves callers once the API takes ordered_json (see
// chat_template.h); Python keeps the caller's key order, which `tojson` of a tool shows.
[[maybe_unused]] nlohmann::ordered_json to_ordered(const nlohmann::ordered_json& j) { return j; }
nlohmann::ordered_json to_ordered(const nlohmann::json& j) { return nlohmann::ordered_json(j); }

}  // namespace

Result<ChatTemplate> ChatTemplate::load(const std::filesystem::path& model_dir) {
  std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (std::filesystem::exists(config_path)) {
    MSI_ASSIGN_OR_RETURN(config, read_json(config_path));
  }
  std::string source;
  std::filesystem::path jinja_path = model_dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path)) {
    MSI_ASSIGN_OR_RETURN(source, read_text(jinja_path));
  } else {
    MSI_ASSIGN_OR_RETURN(source, config_template(config, config_path));
  }
  if (source.empty()) {
    return error(StatusCode::kNotFound,
                 "{} has no chat template (chat_template.jinja or \"chat_template\" in "
                 "tokenizer_config.json)",
                 model_dir.string());
  }
  nlohmann::ordered_json special = jinja::hf_special_tokens(config);
  return from_source(std::move(source), nlohmann::json(special));
}

Result<ChatTemplate> ChatTemplate::from_source(std::string source, nlohmann::json special_tokens) {
  Result<std::shared_ptr<const jinja::Template>> t =
      jinja::Template::parse(source, jinja::hf_chat_options());
  if (!t.is_ok()) return chat_error(t.status());
  ChatTemplate ct;
  ct.source_ = std::move(source);
  ct.special_tokens_ = jinja::hf_special_tokens(to_ordered(special_tokens));
  ct.template_ = std::move(t).value();
  return ct;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages,
                                         const ChatRenderOptions& options) const {
  jinja::HfChatRequest request;
  request.messages = to_ordered(messages);
  request.tools = to_ordered(options.tools);
  request.add_generation_prompt = options.add_generation_prompt;
  if (!options.extra_context.is_null()) request.extra_context = to_ordered(options.extra_context);
  Result<std::string> out = jinja::render_hf_chat(*template_, to_ordered(special_tokens_), request);
  if (!out.is_ok()) return chat_error(out.status());
  return out;
}

}  // namespace msi

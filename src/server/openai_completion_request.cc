#include "server/openai_completion_request.h"

#include <fmt/format.h>

#include "server/openai_fields.h"

namespace msi::openai {
namespace {

constexpr const char* kPromptForms =
    "'prompt' must be a string, a list of strings, a list of token ids or a list of lists of "
    "token ids";

PromptInput text_prompt(std::string text) {
  PromptInput p;
  p.text = std::move(text);
  return p;
}

PromptInput token_prompt(std::vector<int32_t> ids) {
  PromptInput p;
  p.is_tokens = true;
  p.token_ids = std::move(ids);
  return p;
}

ApiResult<std::vector<PromptInput>> read_prompts(const ordered_json& body) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return bad_request("'prompt' is required", "prompt");
  const ordered_json& v = *it;
  std::vector<PromptInput> prompts;

  if (v.is_string()) {
    if (v.get_ref<const std::string&>().empty()) return bad_request("prompt is empty", "prompt");
    prompts.push_back(text_prompt(v.get<std::string>()));
    return prompts;
  }
  if (!v.is_array()) return bad_request(kPromptForms, "prompt");
  if (v.empty()) return bad_request("prompt is empty", "prompt");

  const ordered_json& first = v.front();
  if (first.is_number()) {  // one prompt of token ids
    MSI_API_ASSIGN_OR_RETURN(auto ids, token_ids_value(v, "prompt"));
    prompts.push_back(token_prompt(std::move(ids)));
    return prompts;
  }
  if (!first.is_string() && !first.is_array()) {
    return bad_request("'prompt[0]' must be a string, a token id or a list of token ids",
                       "prompt[0]");
  }
  const bool strings = first.is_string();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string path = index_path("prompt", i);
    if (strings) {
      if (!v[i].is_string()) {
        return bad_request(fmt::format("'{}' must be a string, like prompt[0]", path), path);
      }
      if (v[i].get_ref<const std::string&>().empty()) {
        return bad_request(fmt::format("{} is empty", path), path);
      }
      prompts.push_back(text_prompt(v[i].get<std::string>()));
    } else {
      if (!v[i].is_array()) {
        return bad_request(fmt::format("'{}' must be a list of token ids, like prompt[0]", path),
                           path);
      }
      if (v[i].empty()) return bad_request(fmt::format("{} is empty", path), path);
      MSI_API_ASSIGN_OR_RETURN(auto ids, token_ids_value(v[i], path));
      prompts.push_back(token_prompt(std::move(ids)));
    }
  }
  return prompts;
}

ApiCheck check_unsupported(const ordered_json& body) {
  auto suffix = body.find("suffix");
  if (suffix != body.end() && !suffix->is_null()) {
    return bad_request("'suffix' is not supported", "suffix");
  }
  auto echo = read_bool(body, "echo");
  if (!echo.is_ok()) return echo.error();
  if (echo->value_or(false)) return bad_request("'echo' is not supported", "echo");
  auto best_of = read_int(body, "best_of", {.min = 1});
  if (!best_of.is_ok()) return best_of.error();
  if (best_of->value_or(1) != 1) return bad_request("best_of > 1 is not supported", "best_of");
  auto prompt_logprobs = body.find("prompt_logprobs");
  if (prompt_logprobs != body.end() && !prompt_logprobs->is_null()) {
    return bad_request("'prompt_logprobs' is not supported", "prompt_logprobs");
  }
  return std::nullopt;
}

}  // namespace

ApiResult<CompletionRequest> parse_completion_request(const ordered_json& body) {
  MSI_API_RETURN_IF_ERROR(check_body_is_object(body));
  CompletionRequest r;
  MSI_API_ASSIGN_OR_RETURN(r.model, read_required_string(body, "model"));
  MSI_API_ASSIGN_OR_RETURN(r.prompts, read_prompts(body));

  // Absent → 16; an explicit null → no limit (vLLM keeps the two apart the same way).
  std::optional<int64_t> max_tokens = kCompletionDefaultMaxTokens;
  if (body.contains("max_tokens")) {
    MSI_API_ASSIGN_OR_RETURN(max_tokens, read_int(body, "max_tokens", {.min = 1}));
  }
  MSI_API_ASSIGN_OR_RETURN(r.sampling, parse_sampling_options(body, max_tokens));
  MSI_API_ASSIGN_OR_RETURN(r.logprobs, read_int(body, "logprobs", {0, kMaxLogprobs}));
  MSI_API_ASSIGN_OR_RETURN(r.stream, parse_stream_options(body));
  MSI_API_RETURN_IF_ERROR(check_unsupported(body));
  return r;
}

}  // namespace msi::openai

#include "server/openai_sampling.h"

#include <fmt/format.h>

#include "server/openai_fields.h"

namespace msi::openai {
namespace {

// "stop": a string or a list of strings; null or absent: none.
ApiResult<std::vector<std::string>> read_stop(const ordered_json& body) {
  std::vector<std::string> stop;
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return stop;
  const ordered_json& v = *it;
  const std::string kMustBe = "'stop' must be a string or a list of strings";
  if (v.is_string()) {
    if (v.get_ref<const std::string&>().empty()) {
      return bad_request("'stop' must not be an empty string", "stop");
    }
    stop.push_back(v.get<std::string>());
    return stop;
  }
  if (!v.is_array()) return bad_request(kMustBe, "stop");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string path = index_path("stop", i);
    if (!v[i].is_string()) return bad_request(fmt::format("'{}' must be a string", path), path);
    if (v[i].get_ref<const std::string&>().empty()) {
      return bad_request(fmt::format("'{}' must not be an empty string", path), path);
    }
    stop.push_back(v[i].get<std::string>());
  }
  return stop;
}

ApiCheck check_n(const ordered_json& body) {
  auto n = read_int(body, "n");
  if (!n.is_ok()) return n.error();
  if (!n->has_value()) return std::nullopt;
  if (**n < 1) return bad_request(fmt::format("'n' must be at least 1, got {}", **n), "n");
  if (**n > 1) return bad_request("n > 1 is not supported", "n");
  return std::nullopt;
}

ApiCheck check_logit_bias(const ordered_json& body) {
  auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return bad_request("'logit_bias' must be an object", "logit_bias");
  if (!it->empty()) return bad_request("'logit_bias' is not supported", "logit_bias");
  return std::nullopt;
}

}  // namespace

ApiResult<SamplingOptions> parse_sampling_options(const ordered_json& body,
                                                  std::optional<int64_t> max_tokens) {
  SamplingOptions s;
  s.max_tokens = max_tokens;

  MSI_API_ASSIGN_OR_RETURN(auto temperature, read_number(body, "temperature", {0.0, 2.0}));
  if (temperature) s.temperature = *temperature;
  MSI_API_ASSIGN_OR_RETURN(auto top_p, read_number(body, "top_p", {0.0, 1.0, true}));
  if (top_p) s.top_p = *top_p;
  MSI_API_ASSIGN_OR_RETURN(auto top_k, read_int(body, "top_k", {.min = -1}));
  if (top_k) s.top_k = *top_k;
  MSI_API_ASSIGN_OR_RETURN(s.seed, read_int(body, "seed"));

  MSI_API_ASSIGN_OR_RETURN(s.stop, read_stop(body));
  auto ids = body.find("stop_token_ids");
  if (ids != body.end() && !ids->is_null()) {
    MSI_API_ASSIGN_OR_RETURN(s.stop_token_ids, token_ids_value(*ids, "stop_token_ids"));
  }

  MSI_API_ASSIGN_OR_RETURN(auto ignore_eos, read_bool(body, "ignore_eos"));
  s.ignore_eos = ignore_eos.value_or(false);
  MSI_API_ASSIGN_OR_RETURN(auto min_tokens, read_int(body, "min_tokens", {.min = 0}));
  s.min_tokens = min_tokens.value_or(0);
  if (max_tokens && s.min_tokens > *max_tokens) {
    return bad_request(fmt::format("'min_tokens' must be at most max_tokens ({}), got {}",
                                   *max_tokens, s.min_tokens),
                       "min_tokens");
  }

  MSI_API_RETURN_IF_ERROR(check_n(body));
  MSI_API_RETURN_IF_ERROR(check_neutral_number(body, "presence_penalty", 0.0));
  MSI_API_RETURN_IF_ERROR(check_neutral_number(body, "frequency_penalty", 0.0));
  MSI_API_RETURN_IF_ERROR(check_neutral_number(body, "repetition_penalty", 1.0));
  MSI_API_RETURN_IF_ERROR(check_neutral_number(body, "min_p", 0.0));
  MSI_API_RETURN_IF_ERROR(check_logit_bias(body));
  return s;
}

ApiResult<StreamOptions> parse_stream_options(const ordered_json& body) {
  StreamOptions o;
  MSI_API_ASSIGN_OR_RETURN(auto stream, read_bool(body, "stream"));
  o.stream = stream.value_or(false);
  auto it = body.find("stream_options");
  if (it == body.end() || it->is_null()) return o;
  if (!it->is_object()) return bad_request("'stream_options' must be an object", "stream_options");
  if (!o.stream) {
    return bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options");
  }
  MSI_API_ASSIGN_OR_RETURN(auto include_usage, read_bool(*it, "include_usage", "stream_options"));
  o.include_usage = include_usage.value_or(false);
  return o;
}

}  // namespace msi::openai

#include "server/openai_response.h"

namespace msi::openai {

namespace {
constexpr double kMinLogprob = -9999.0;
}  // namespace

double clamp_logprob(double logprob) {
  // NOTE: written so that NaN fails the comparison and is clamped too.
  return logprob >= kMinLogprob ? logprob : kMinLogprob;
}

ordered_json usage_json(const Usage& usage) {
  ordered_json out = ordered_json::object();
  out["prompt_tokens"] = usage.prompt_tokens;
  out["completion_tokens"] = usage.completion_tokens;
  out["total_tokens"] = usage.prompt_tokens + usage.completion_tokens;
  return out;
}

ordered_json stop_reason_json(const StopReason& reason) {
  if (const auto* id = std::get_if<int64_t>(&reason)) return *id;
  if (const auto* text = std::get_if<std::string>(&reason)) return *text;
  return nullptr;
}

ordered_json response_head(const ResponseMeta& meta, const char* object) {
  ordered_json out = ordered_json::object();
  out["id"] = meta.id;
  out["object"] = object;
  out["created"] = meta.created;
  out["model"] = meta.model;
  return out;
}

ordered_json usage_chunk(const ResponseMeta& meta, const char* object, const Usage& usage) {
  ordered_json out = response_head(meta, object);
  out["choices"] = ordered_json::array();
  out["usage"] = usage_json(usage);
  return out;
}

}  // namespace msi::openai

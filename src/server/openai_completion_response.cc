#include "server/openai_completion_response.h"

namespace msi::openai {
namespace {

ordered_json choice_json(const CompletionChoice& c) {
  ordered_json out = ordered_json::object();
  out["index"] = c.index;
  out["text"] = c.text;
  out["logprobs"] =
      c.logprobs ? completion_logprobs_json(*c.logprobs, c.text_offset) : ordered_json(nullptr);
  out["finish_reason"] = c.finish_reason ? ordered_json(*c.finish_reason) : ordered_json(nullptr);
  out["stop_reason"] = stop_reason_json(c.stop_reason);
  return out;
}

}  // namespace

int64_t utf8_length(std::string_view text) {
  int64_t n = 0;
  for (unsigned char ch : text) n += (ch & 0xC0) != 0x80;
  return n;
}

ordered_json completion_logprobs_json(std::span<const TokenLogprob> tokens, int64_t text_offset) {
  ordered_json token_texts = ordered_json::array();
  ordered_json token_logprobs = ordered_json::array();
  ordered_json top_logprobs = ordered_json::array();
  ordered_json offsets = ordered_json::array();
  int64_t offset = text_offset;
  for (const TokenLogprob& t : tokens) {
    token_texts.push_back(t.token);
    token_logprobs.push_back(clamp_logprob(t.logprob));
    ordered_json top = ordered_json::object();
    for (const TopLogprob& alt : t.top_logprobs) {
      if (!top.contains(alt.token)) top[alt.token] = clamp_logprob(alt.logprob);
    }
    top_logprobs.push_back(std::move(top));
    offsets.push_back(offset);
    offset += utf8_length(t.token);
  }
  ordered_json out = ordered_json::object();
  out["tokens"] = std::move(token_texts);
  out["token_logprobs"] = std::move(token_logprobs);
  out["top_logprobs"] = std::move(top_logprobs);
  out["text_offset"] = std::move(offsets);
  return out;
}

ordered_json completion_response(const ResponseMeta& meta,
                                 std::span<const CompletionChoice> choices, const Usage& usage) {
  ordered_json out = response_head(meta, kCompletionObject);
  ordered_json list = ordered_json::array();
  for (const CompletionChoice& c : choices) list.push_back(choice_json(c));
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

ordered_json completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice) {
  ordered_json out = response_head(meta, kCompletionObject);
  out["choices"] = ordered_json::array({choice_json(choice)});
  return out;
}

ordered_json completion_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  return usage_chunk(meta, kCompletionObject, usage);
}

}  // namespace msi::openai

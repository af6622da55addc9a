#include "server/openai_chat_response.h"

namespace msi::openai {
namespace {

ordered_json bytes_json(const std::string& token) {
  ordered_json out = ordered_json::array();
  for (unsigned char b : token) out.push_back(static_cast<int>(b));
  return out;
}

// {"id", "type", "function": {"name", "arguments"}}, with "index" first when index ≥ 0.
ordered_json tool_call_json(const ToolCall& call, int64_t index) {
  ordered_json fn = ordered_json::object();
  fn["name"] = call.name;
  fn["arguments"] = call.arguments;
  ordered_json out = ordered_json::object();
  if (index >= 0) out["index"] = index;
  out["id"] = call.id;
  out["type"] = "function";
  out["function"] = std::move(fn);
  return out;
}

ordered_json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  ordered_json out = ordered_json::array();
  for (size_t j = 0; j < calls.size(); ++j) {
    out.push_back(tool_call_json(calls[j], with_index ? static_cast<int64_t>(j) : -1));
  }
  return out;
}

ordered_json logprobs_or_null(const std::optional<std::vector<TokenLogprob>>& logprobs) {
  return logprobs ? chat_logprobs_json(*logprobs) : ordered_json(nullptr);
}

ordered_json message_json(const ChatChoice& c) {
  ordered_json out = ordered_json::object();
  out["role"] = "assistant";
  const bool null_content = c.content.empty() && !c.tool_calls.empty();
  out["content"] = null_content ? ordered_json(nullptr) : ordered_json(c.content);
  if (c.reasoning_content) out["reasoning_content"] = *c.reasoning_content;
  if (!c.tool_calls.empty()) out["tool_calls"] = tool_calls_json(c.tool_calls, false);
  return out;
}

ordered_json delta_json(const ChatDelta& d) {
  ordered_json out = ordered_json::object();
  if (d.role) out["role"] = *d.role;
  if (d.content) out["content"] = *d.content;
  if (d.reasoning_content) out["reasoning_content"] = *d.reasoning_content;
  if (!d.tool_calls.empty()) out["tool_calls"] = tool_calls_json(d.tool_calls, true);
  return out;
}

}  // namespace

ordered_json chat_logprobs_json(std::span<const TokenLogprob> tokens) {
  ordered_json content = ordered_json::array();
  for (const TokenLogprob& t : tokens) {
    ordered_json top = ordered_json::array();
    for (const TopLogprob& alt : t.top_logprobs) {
      ordered_json entry = ordered_json::object();
      entry["token"] = alt.token;
      entry["logprob"] = clamp_logprob(alt.logprob);
      entry["bytes"] = bytes_json(alt.token);
      top.push_back(std::move(entry));
    }
    ordered_json entry = ordered_json::object();
    entry["token"] = t.token;
    entry["logprob"] = clamp_logprob(t.logprob);
    entry["bytes"] = bytes_json(t.token);
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  ordered_json out = ordered_json::object();
  out["content"] = std::move(content);
  return out;
}

ordered_json chat_response(const ResponseMeta& meta, std::span<const ChatChoice> choices,
                           const Usage& usage) {
  ordered_json out = response_head(meta, kChatObject);
  ordered_json list = ordered_json::array();
  for (const ChatChoice& c : choices) {
    ordered_json choice = ordered_json::object();
    choice["index"] = c.index;
    choice["message"] = message_json(c);
    choice["logprobs"] = logprobs_or_null(c.logprobs);
    choice["finish_reason"] = c.finish_reason;
    choice["stop_reason"] = stop_reason_json(c.stop_reason);
    list.push_back(std::move(choice));
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

ordered_json chat_chunk(const ResponseMeta& meta, const ChatChunkChoice& c) {
  ordered_json choice = ordered_json::object();
  choice["index"] = c.index;
  choice["delta"] = delta_json(c.delta);
  choice["logprobs"] = logprobs_or_null(c.logprobs);
  choice["finish_reason"] =
      c.finish_reason ? ordered_json(*c.finish_reason) : ordered_json(nullptr);
  choice["stop_reason"] = stop_reason_json(c.stop_reason);
  ordered_json out = response_head(meta, kChatChunkObject);
  out["choices"] = ordered_json::array({std::move(choice)});
  return out;
}

ordered_json chat_role_chunk(const ResponseMeta& meta, int64_t index) {
  ChatChunkChoice c;
  c.index = index;
  c.delta.role = "assistant";
  c.delta.content = "";
  return chat_chunk(meta, c);
}

ordered_json chat_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  return usage_chunk(meta, kChatChunkObject, usage);
}

}  // namespace msi::openai

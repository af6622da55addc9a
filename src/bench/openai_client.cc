#include "bench/openai_client.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <httplib.h>

namespace msi::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kConnectTimeoutS = 10.0;
constexpr size_t kMaxErrorBody = 512;  // bytes of a failed response kept in the error text

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void split_seconds(double s, time_t& sec, time_t& usec) {
  sec = static_cast<time_t>(std::floor(s));
  usec = static_cast<time_t>((s - std::floor(s)) * 1e6);
}

void apply_timeouts(httplib::Client& cli, double timeout_s) {
  time_t sec = 0;
  time_t usec = 0;
  split_seconds(std::min(timeout_s, kConnectTimeoutS), sec, usec);
  cli.set_connection_timeout(sec, usec);
  split_seconds(timeout_s, sec, usec);
  cli.set_read_timeout(sec, usec);
  cli.set_write_timeout(sec, usec);
}

std::string describe(httplib::Error err) {
  switch (err) {
    case httplib::Error::Connection: return "cannot connect (is the server running?)";
    case httplib::Error::ConnectionTimeout: return "connecting timed out";
    case httplib::Error::Read: return "reading the response failed or timed out";
    case httplib::Error::Write: return "sending the request failed or timed out";
    case httplib::Error::Canceled: return "canceled";
    default: return httplib::to_string(err);
  }
}

std::string clip(const std::string& s) {
  return s.size() <= kMaxErrorBody ? s : s.substr(0, kMaxErrorBody) + "...";
}

// The error text of an OpenAI error body {"error": {"message": ...}} or {"error": "..."}, else
// the body itself (clipped).
std::string error_text(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error")) {
    const nlohmann::json& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      return e["message"].get<std::string>();
    }
  }
  return clip(body);
}

}  // namespace

bool SseLineReader::feed(std::string_view bytes,
                         const std::function<bool(std::string_view data)>& on_data) {
  pending_.append(bytes.data(), bytes.size());
  size_t begin = 0;
  bool keep_going = true;
  while (keep_going) {
    const size_t nl = pending_.find('\n', begin);
    if (nl == std::string::npos) break;
    std::string_view line(pending_.data() + begin, nl - begin);
    begin = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 5) != "data:") continue;
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    keep_going = on_data(line);
  }
  pending_.erase(0, begin);
  return keep_going;
}

ServerClient::ServerClient(const HttpTarget& target)
    : target_(target), http_(std::make_unique<httplib::Client>(target.host, target.port)) {
  apply_timeouts(*http_, target.timeout_s);
  http_->set_keep_alive(true);
}

ServerClient::~ServerClient() = default;

Result<std::vector<std::string>> ServerClient::list_models() {
  httplib::Result res = http_->Get("/v1/models");
  if (!res) {
    return error(StatusCode::kUnavailable,
                 "cannot reach the server at http://{}:{} (GET /v1/models: {})", target_.host,
                 target_.port, describe(res.error()));
  }
  if (res->status != 200) {
    return error(StatusCode::kUnavailable, "GET /v1/models answered HTTP {}: {}", res->status,
                 error_text(res->body));
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    return error(StatusCode::kInvalidArgument, "GET /v1/models: not a model list: {}",
                 clip(res->body));
  }
  std::vector<std::string> ids;
  for (const nlohmann::json& m : j["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string()) {
      ids.push_back(m["id"].get<std::string>());
    }
  }
  return ids;
}

Result<int64_t> ServerClient::count_tokens(const std::string& model, const std::string& text) {
  const nlohmann::json body = {{"model", model}, {"prompt", text}};
  httplib::Result res = http_->Post("/tokenize", body.dump(), "application/json");
  if (!res) {
    return error(StatusCode::kUnavailable, "POST /tokenize: {}", describe(res.error()));
  }
  if (res->status != 200) {
    return error(StatusCode::kUnavailable, "POST /tokenize answered HTTP {}: {}", res->status,
                 error_text(res->body));
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("count") && j["count"].is_number_integer()) {
    return j["count"].get<int64_t>();
  }
  if (j.is_object() && j.contains("tokens") && j["tokens"].is_array()) {
    return static_cast<int64_t>(j["tokens"].size());
  }
  return error(StatusCode::kInvalidArgument, "POST /tokenize: no \"count\" in {}", clip(res->body));
}

nlohmann::json make_request_body(const BenchRequest& request, const std::string& model, bool chat,
                                 bool ignore_eos) {
  nlohmann::json body = {
      {"model", model},
      {"max_tokens", request.output_len},
      {"temperature", 0.0},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  if (ignore_eos) body["ignore_eos"] = true;
  if (chat) {
    body["messages"] =
        nlohmann::json::array({{{"role", "user"}, {"content", request.prompt_text}}});
  } else if (!request.prompt_ids.empty()) {
    body["prompt"] = request.prompt_ids;
  } else {
    body["prompt"] = request.prompt_text;
  }
  return body;
}

RequestOutput stream_request(const HttpTarget& target, const std::string& path,
                             const std::string& body, bool chat, Clock::time_point origin) {
  RequestOutput out;
  httplib::Client cli(target.host, target.port);
  apply_timeouts(cli, target.timeout_s);
  cli.set_keep_alive(false);

  SseLineReader reader;
  std::string raw_head;     // the first bytes, to explain a response that carries no events
  std::string fail_reason;  // set when the stream itself says it failed
  bool timed_out = false;
  bool usage_seen = false;
  int64_t n_text_chunks = 0;
  Clock::time_point start;
  Clock::time_point last_text;
  Clock::time_point deadline;

  auto on_data = [&](std::string_view data) {
    if (data == "[DONE]") return true;
    const Clock::time_point now = Clock::now();
    nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      fail_reason = fmt::format("malformed event data: {}", clip(std::string(data)));
      return false;
    }
    if (j.contains("error")) {
      fail_reason = "server error in stream: " + error_text(std::string(data));
      return false;
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      const nlohmann::json& usage = j["usage"];
      if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_integer()) {
        out.n_output_tokens = usage["completion_tokens"].get<int64_t>();
        usage_seen = true;
      }
    }
    if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
      const nlohmann::json& choice = j["choices"][0];
      const nlohmann::json* text = nullptr;
      if (chat) {
        if (choice.contains("delta") && choice["delta"].contains("content")) {
          text = &choice["delta"]["content"];
        }
      } else if (choice.contains("text")) {
        text = &choice["text"];
      }
      // NOTE: chunks without text (a chat role header, a bare finish_reason) are not tokens and
      // would add near-zero gaps to ITL, so only chunks with text are timed.
      if (text != nullptr && text->is_string() && !text->get_ref<const std::string&>().empty()) {
        if (n_text_chunks == 0) {
          out.ttft_s = seconds_between(start, now);
        } else {
          out.itl_s.push_back(seconds_between(last_text, now));
        }
        last_text = now;
        ++n_text_chunks;
        out.generated_text += text->get_ref<const std::string&>();
      }
    }
    return true;
  };

  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  req.response_handler = [&](const httplib::Response& res) {
    out.http_status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (raw_head.size() < kMaxErrorBody) {
      raw_head.append(data, std::min(n, kMaxErrorBody - raw_head.size()));
    }
    if (out.http_status != 200) return true;  // keep the error body in raw_head
    if (!reader.feed(std::string_view(data, n), on_data)) return false;
    if (Clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    return true;
  };

  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(target.timeout_s));
  out.start_s = seconds_between(origin, start);
  const bool sent = cli.send(req, res, err);
  out.e2el_s = seconds_between(start, Clock::now());

  if (!fail_reason.empty()) {
    out.error = fail_reason;
  } else if (timed_out) {
    out.error = fmt::format("timed out after {} s", target.timeout_s);
  } else if (!sent) {
    out.error = fmt::format("POST {}: {}", path, describe(err));
  } else if (out.http_status != 200) {
    out.error = fmt::format("HTTP {}: {}", out.http_status, error_text(raw_head));
  } else if (n_text_chunks == 0) {
    out.error = "the stream carried no text; first bytes: " + clip(raw_head);
  } else {
    out.success = true;
    if (!usage_seen) out.n_output_tokens = n_text_chunks;
  }
  return out;
}

}  // namespace msi::bench

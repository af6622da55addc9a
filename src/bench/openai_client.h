// The benchmark's HTTP side: plain calls to an OpenAI-compatible server (GET /v1/models, POST
// /tokenize) and one streamed completion, timed chunk by chunk. Uses cpp-httplib; its types stay
// out of this header.
//
// Every network wait is bounded: connecting by min(timeout, 10 s), each read and write by the
// timeout, and a stream is abandoned once its total time exceeds the timeout.
// Thread-safety: ServerClient is thread-compatible (one thread at a time); stream_request is
// thread-safe (each call has its own connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/datasets.h"
#include "core/status.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace msi::bench {

struct HttpTarget {
  std::string host = "127.0.0.1";
  int port = 8000;
  double timeout_s = 600.0;  // per request
};

// Non-streamed calls over one kept-alive connection.
class ServerClient {
 public:
  explicit ServerClient(const HttpTarget& target);
  ~ServerClient();

  // GET /v1/models: the ids in the server's order. Unavailable when the server cannot be
  // reached (the first thing a benchmark does, so a server that is down fails here, clearly).
  Result<std::vector<std::string>> list_models();
  // POST /tokenize {"model": model, "prompt": text} -> {"count": n} (or a "tokens" list).
  Result<int64_t> count_tokens(const std::string& model, const std::string& text);

 private:
  HttpTarget target_;
  std::unique_ptr<httplib::Client> http_;
};

// What one streamed request did. Times are seconds.
struct RequestOutput {
  bool success = false;
  std::string error;          // why it failed; empty on success
  int http_status = 0;        // 0 when no response came
  double start_s = 0.0;       // when it was sent, since the benchmark started
  double ttft_s = 0.0;        // to the first chunk with non-empty text
  std::vector<double> itl_s;  // gaps between consecutive chunks with non-empty text
  double e2el_s = 0.0;        // to the end of the response
  int64_t prompt_len = 0;     // from the dataset
  // usage.completion_tokens of the final usage chunk; without one, the number of text chunks.
  int64_t n_output_tokens = 0;
  std::string generated_text;
};

// The JSON body for `request` on /v1/completions (chat == false) or /v1/chat/completions:
// streamed with stream_options.include_usage, temperature 0, max_tokens = output_len, and
// ignore_eos when asked.
nlohmann::json make_request_body(const BenchRequest& request, const std::string& model, bool chat,
                                 bool ignore_eos);

// POSTs `body` to `path` and reads the server-sent events. `origin` is the benchmark's start,
// for start_s. Never throws; a failure (connection, HTTP status, an "error" event, malformed
// data, no text at all, timeout) comes back as success == false with the reason. Blocks for at
// most about 2 x target.timeout_s (a stalled read is cut at the timeout, and so is a stream whose
// total time passes it).
RequestOutput stream_request(const HttpTarget& target, const std::string& path,
                             const std::string& body, bool chat,
                             std::chrono::steady_clock::time_point origin);

// Splits a byte stream into server-sent-event lines and hands over the payload of each
// "data:" line (without "data:" and one optional space); other lines (comments, event names,
// blank separators) are skipped. Handles lines split across reads and \r\n endings.
class SseLineReader {
 public:
  // Calls on_data for each complete data line in `bytes`; stops early and returns false when
  // on_data returns false.
  bool feed(std::string_view bytes, const std::function<bool(std::string_view data)>& on_data);

 private:
  std::string pending_;  // an incomplete line carried to the next feed
};

}  // namespace msi::bench

// The serving benchmark behind `msinfer bench serve`, in the spirit of `vllm bench serve`: builds
// a dataset, sends its requests to a running OpenAI-compatible server at Poisson (or all-at-once)
// arrival times, at most max_concurrency in flight, streams every response, and reports
// throughput and TTFT / TPOT / ITL / E2EL statistics.
//
// Owns its worker threads for the duration of run_serve_bench and nothing afterwards. Each
// request in flight has a thread (threads are reused; their number peaks at the peak
// concurrency). Thread-safety: run_serve_bench may be called from any thread; concurrent calls
// are independent.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/datasets.h"
#include "bench/openai_client.h"
#include "bench/report.h"
#include "core/status.h"

namespace msi::bench {

inline constexpr double kInfiniteRate = std::numeric_limits<double>::infinity();

struct ServeBenchConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string model;                         // empty: the first model of GET /v1/models
  std::string endpoint = "/v1/completions";  // or "/v1/chat/completions"
  std::string dataset_name = "random";       // or "sharegpt"
  std::string dataset_path;                  // sharegpt: the JSON file
  int64_t n_prompts = 1000;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 128;
  double random_range_ratio = 0.0;
  int64_t random_vocab_size = 2000;     // see RandomDatasetConfig::vocab_size
  double request_rate = kInfiniteRate;  // requests/s; infinite sends them all at once
  int64_t max_concurrency = 0;          // 0: unlimited
  uint64_t seed = 0;
  bool ignore_eos = false;
  double timeout_s = 600.0;  // per request, and per call while preparing
  bool progress = false;     // "\r[bench] 37/100 done, 4 in flight, 12.3 s" on stderr
};

struct ServeBenchResult {
  ServeBenchConfig config;
  std::string model;  // as resolved
  std::vector<BenchRequest> requests;
  std::vector<double> arrival_s;       // [n_prompts] scheduled send times since the start
  std::vector<RequestOutput> outputs;  // [n_prompts] in dataset order
  int64_t max_in_flight = 0;           // the most requests in flight at once
  BenchMetrics metrics;

  // The result-file object: metrics_json() plus "date", "endpoint", "model_id", "dataset_name",
  // "num_prompts", "request_rate" ("inf" when infinite), "max_concurrency" (null when
  // unlimited), "seed", and per request (dataset order, vLLM's keys and units: seconds)
  // "input_lens", "output_lens", "ttfts", "itls", "errors".
  nlohmann::json to_json() const;
  // The human report (format_table with a header naming the run).
  std::string to_table() const;
};

// Scheduled send times, seconds since the start, for n requests: a Poisson process of `rate`
// per second (exponential gaps, the first one included, drawn from `seed`), or all zero when the
// rate is infinite. Reproducible across platforms. Requires rate > 0.
std::vector<double> arrival_offsets(int64_t n, double rate, uint64_t seed);

// Runs the benchmark. Fails (without sending a request) on a bad config (InvalidArgument), an
// unreachable server (Unavailable, "cannot reach the server at http://host:port ..."), an empty
// model list, or a dataset that cannot be built. Requests that fail are counted, not fatal.
// Blocks until every request has finished; each is bounded by config.timeout_s (see
// stream_request), so the whole run is bounded by the last arrival plus the slowest request.
Result<ServeBenchResult> run_serve_bench(const ServeBenchConfig& config);

}  // namespace msi::bench

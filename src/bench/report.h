// The serving benchmark's figures, computed from per-request outputs the way `vllm bench serve`
// computes them, and their two renderings: a human table and a JSON object with vLLM's keys.
//
// Owns nothing but values; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/openai_client.h"

namespace msi::bench {

// Mean, median, population standard deviation and 99th percentile (linear interpolation between
// closest ranks, as numpy's default), in milliseconds. All zero for no samples.
struct LatencyStats {
  double mean_ms = 0.0;
  double median_ms = 0.0;
  double std_ms = 0.0;
  double p99_ms = 0.0;
};

// Requires 0 <= p <= 100 and a non-empty `sorted` in ascending order.
double percentile(const std::vector<double>& sorted, double p);
// `seconds` in any order.
LatencyStats summarize_ms(std::vector<double> seconds);

struct BenchMetrics {
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t total_input_tokens = 0;   // prompt tokens of completed requests
  int64_t total_output_tokens = 0;  // output tokens of completed requests
  double duration_s = 0.0;
  double request_throughput = 0.0;      // completed / duration, req/s
  double output_throughput = 0.0;       // output tokens / duration, tok/s
  double total_token_throughput = 0.0;  // (input + output tokens) / duration, tok/s
  LatencyStats ttft;                    // time to first token
  // Time per output token after the first, (e2el - ttft) / (n_output_tokens - 1), over completed
  // requests with more than one output token.
  LatencyStats tpot;
  LatencyStats itl;   // every inter-token gap of every completed request
  LatencyStats e2el;  // end-to-end latency
};

// Requires duration_s > 0.
BenchMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s);

// A table in the layout of `vllm bench serve`'s report; `header` lines (model, endpoint, rate)
// are printed above it.
std::string format_table(const BenchMetrics& m, const std::vector<std::string>& header = {});

// {"completed", "failed", "total_input_tokens", "total_output_tokens", "duration",
// "request_throughput", "output_throughput", "total_token_throughput", and for each of ttft,
// tpot, itl, e2el: "mean_<x>_ms", "median_<x>_ms", "std_<x>_ms", "p99_<x>_ms"}.
nlohmann::json metrics_json(const BenchMetrics& m);

}  // namespace msi::bench

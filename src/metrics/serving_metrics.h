// ServingMetrics: the OpenAI-compatible server's Prometheus metrics under vLLM's names, so that
// dashboards and autoscalers written for vLLM work unchanged. Every series carries the constant
// label model_name="<served model name>".
//
// Owns nothing: the series live in the Registry passed to the constructor, which must outlive
// this object. Thread-safety: every member may be updated from any thread without locks (see
// metrics/registry.h); render with Registry::render().
#pragma once

#include <string>
#include <vector>

#include "metrics/registry.h"

namespace msi::metrics {

// The finished_reason label of vllm:request_success_total.
enum class FinishedReason { kStop, kLength, kAbort };
// "stop", "length", "abort".
const char* finished_reason_name(FinishedReason reason);

// Bucket bounds in seconds, as vLLM uses them.
std::vector<double> ttft_buckets();         // vllm:time_to_first_token_seconds
std::vector<double> inter_token_buckets();  // inter-token latency and time per output token
std::vector<double> e2e_latency_buckets();  // vllm:e2e_request_latency_seconds

struct ServingMetrics {
  // Registers every series below (with zero values, so they are scraped before the first
  // request). Allocates; call once at start-up.
  ServingMetrics(Registry& registry, const std::string& model_name);

  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  // vllm:time_to_first_token_seconds: arrival of the request to its first output token.
  void observe_ttft(double seconds) { time_to_first_token.observe(seconds); }
  // One gap between consecutive output tokens of a request; recorded in both
  // vllm:inter_token_latency_seconds and, for older dashboards, vllm:time_per_output_token_seconds.
  void observe_inter_token_latency(double seconds) {
    inter_token_latency.observe(seconds);
    time_per_output_token.observe(seconds);
  }
  // A request left the engine: counts it under its reason and records its end-to-end latency
  // (arrival to last token, seconds).
  void on_request_finished(FinishedReason reason, double e2e_seconds);
  Counter& request_success(FinishedReason reason);

  Gauge& requests_running;           // vllm:num_requests_running
  Gauge& requests_waiting;           // vllm:num_requests_waiting
  Gauge& kv_cache_usage;             // vllm:kv_cache_usage_perc, a fraction in [0, 1]
  Counter& prompt_tokens;            // vllm:prompt_tokens_total
  Counter& generation_tokens;        // vllm:generation_tokens_total
  Counter& preemptions;              // vllm:num_preemptions_total
  Counter& request_success_stop;     // vllm:request_success_total{finished_reason="stop"}
  Counter& request_success_length;   // ...{finished_reason="length"}
  Counter& request_success_abort;    // ...{finished_reason="abort"}
  Histogram& time_to_first_token;    // vllm:time_to_first_token_seconds
  Histogram& inter_token_latency;    // vllm:inter_token_latency_seconds
  Histogram& time_per_output_token;  // vllm:time_per_output_token_seconds (same observations)
  Histogram& e2e_request_latency;    // vllm:e2e_request_latency_seconds
};

}  // namespace msi::metrics

#include "metrics/serving_metrics.h"

#include "core/check.h"

namespace msi::metrics {
namespace {

Labels model_labels(const std::string& model_name) { return {{"model_name", model_name}}; }

Labels reason_labels(const std::string& model_name, FinishedReason reason) {
  return {{"model_name", model_name}, {"finished_reason", finished_reason_name(reason)}};
}

}  // namespace

const char* finished_reason_name(FinishedReason reason) {
  switch (reason) {
    case FinishedReason::kStop: return "stop";
    case FinishedReason::kLength: return "length";
    case FinishedReason::kAbort: return "abort";
  }
  MSI_CHECK(false, "unknown FinishedReason {}", static_cast<int>(reason));
  return "";
}

std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> inter_token_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> e2e_latency_buckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

ServingMetrics::ServingMetrics(Registry& r, const std::string& model_name)
    : requests_running(r.gauge("vllm:num_requests_running",
                               "Number of requests in model execution batches.",
                               model_labels(model_name))),
      requests_waiting(r.gauge("vllm:num_requests_waiting",
                               "Number of requests waiting to be processed.",
                               model_labels(model_name))),
      kv_cache_usage(r.gauge("vllm:kv_cache_usage_perc",
                             "KV-cache usage. 1 means 100 percent usage.",
                             model_labels(model_name))),
      prompt_tokens(r.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                              model_labels(model_name))),
      generation_tokens(r.counter("vllm:generation_tokens_total",
                                  "Number of generation tokens processed.",
                                  model_labels(model_name))),
      preemptions(r.counter("vllm:num_preemptions_total",
                            "Cumulative number of preemptions from the engine.",
                            model_labels(model_name))),
      request_success_stop(r.counter("vllm:request_success_total",
                                     "Count of successfully processed requests.",
                                     reason_labels(model_name, FinishedReason::kStop))),
      request_success_length(r.counter("vllm:request_success_total",
                                       "Count of successfully processed requests.",
                                       reason_labels(model_name, FinishedReason::kLength))),
      request_success_abort(r.counter("vllm:request_success_total",
                                      "Count of successfully processed requests.",
                                      reason_labels(model_name, FinishedReason::kAbort))),
      time_to_first_token(r.histogram("vllm:time_to_first_token_seconds",
                                      "Histogram of time to first token in seconds.",
                                      ttft_buckets(), model_labels(model_name))),
      inter_token_latency(r.histogram("vllm:inter_token_latency_seconds",
                                      "Histogram of inter-token latency in seconds.",
                                      inter_token_buckets(), model_labels(model_name))),
      time_per_output_token(
          r.histogram("vllm:time_per_output_token_seconds",
                      "Histogram of time per output token in seconds (the same observations as "
                      "vllm:inter_token_latency_seconds).",
                      inter_token_buckets(), model_labels(model_name))),
      e2e_request_latency(r.histogram("vllm:e2e_request_latency_seconds",
                                      "Histogram of e2e request latency in seconds.",
                                      e2e_latency_buckets(), model_labels(model_name))) {}

Counter& ServingMetrics::request_success(FinishedReason reason) {
  switch (reason) {
    case FinishedReason::kStop: return request_success_stop;
    case FinishedReason::kLength: return request_success_length;
    case FinishedReason::kAbort: return request_success_abort;
  }
  MSI_CHECK(false, "unknown FinishedReason {}", static_cast<int>(reason));
  return request_success_stop;
}

void ServingMetrics::on_request_finished(FinishedReason reason, double e2e_seconds) {
  request_success(reason).inc();
  e2e_request_latency.observe(e2e_seconds);
}

}  // namespace msi::metrics

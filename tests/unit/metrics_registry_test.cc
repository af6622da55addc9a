// Registry and ServingMetrics: the exact exposition text of each metric type, cumulative histogram
// buckets with an inclusive `le`, label and HELP escaping, series identity, concurrent updates, and
// vLLM's metric names.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/registry.h"
#include "metrics/serving_metrics.h"

namespace msi::metrics {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(MetricsRegistryTest, RendersCounterAndGaugeExactly) {
  Registry r;
  Counter& c = r.counter("msi:tokens_total", "Tokens.", {{"model_name", "tiny"}});
  Gauge& g = r.gauge("msi:running", "Running requests.");
  c.inc();
  c.inc(2.5);
  g.set(7);
  g.dec(2);
  g.inc(0.25);
  EXPECT_EQ(r.render(),
            "# HELP msi:tokens_total Tokens.\n"
            "# TYPE msi:tokens_total counter\n"
            "msi:tokens_total{model_name=\"tiny\"} 3.5\n"
            "# HELP msi:running Running requests.\n"
            "# TYPE msi:running gauge\n"
            "msi:running 5.25\n");
}

TEST(MetricsRegistryTest, RendersHistogramExactly) {
  Registry r;
  Histogram& h = r.histogram("lat_seconds", "Latency.", {0.1, 0.5, 1}, {{"model_name", "tiny"}});
  // le is inclusive: 0.1 lands in the 0.1 bucket, 0.5 in the 0.5 bucket, 2 only in +Inf.
  for (double v : {0.05, 0.1, 0.3, 0.5, 2.0}) h.observe(v);
  EXPECT_EQ(r.render(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{model_name=\"tiny\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{model_name=\"tiny\",le=\"0.5\"} 4\n"
            "lat_seconds_bucket{model_name=\"tiny\",le=\"1\"} 4\n"
            "lat_seconds_bucket{model_name=\"tiny\",le=\"+Inf\"} 5\n"
            "lat_seconds_sum{model_name=\"tiny\"} 2.95\n"
            "lat_seconds_count{model_name=\"tiny\"} 5\n");
}

TEST(MetricsRegistryTest, HistogramBucketMath) {
  Histogram h({1, 2, 4, 8});
  const std::vector<double> values = {-3, 0, 1, 1.0000001, 2, 3.9, 4, 4.5, 8, 8.5, 1e9};
  double sum = 0;
  for (double v : values) {
    h.observe(v);
    sum += v;
  }
  // Non-cumulative: (-inf,1] (1,2] (2,4] (4,8] (8,+inf).
  EXPECT_EQ(h.bucket_counts(), (std::vector<uint64_t>{3, 2, 2, 2, 2}));
  EXPECT_EQ(h.count(), values.size());
  EXPECT_DOUBLE_EQ(h.sum(), sum);

  Histogram empty({0.5});
  EXPECT_EQ(empty.bucket_counts(), (std::vector<uint64_t>{0, 0}));
  EXPECT_EQ(empty.count(), 0u);
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("line1\nback\\slash \"quotes\" stay"),
            "line1\\nback\\\\slash \"quotes\" stay");
  Registry r;
  r.counter("x_total", "Help with \\ and\nnewline.", {{"path", "C:\\tmp\\\"q\"\n"}}).inc();
  EXPECT_EQ(r.render(),
            "# HELP x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"C:\\\\tmp\\\\\\\"q\\\"\\n\"} 1\n");
}

TEST(MetricsRegistryTest, FormatsValues) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e-5), "1e-05");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
}

TEST(MetricsRegistryTest, SameNameAndLabelsIsTheSameSeries) {
  Registry r;
  Counter& a = r.counter("req_total", "Requests.", {{"reason", "stop"}});
  Counter& b = r.counter("req_total", "Requests.", {{"reason", "length"}});
  Counter& a2 = r.counter("req_total", "Requests.", {{"reason", "stop"}});
  EXPECT_EQ(&a, &a2);
  EXPECT_NE(&a, &b);
  a.inc();
  a2.inc();
  b.inc(5);
  // One family: one HELP/TYPE pair, series in registration order.
  EXPECT_EQ(r.render(),
            "# HELP req_total Requests.\n"
            "# TYPE req_total counter\n"
            "req_total{reason=\"stop\"} 2\n"
            "req_total{reason=\"length\"} 5\n");
}

TEST(MetricsRegistryDeathTest, RejectsMisuse) {
  Registry r;
  r.counter("dup", "A counter.");
  EXPECT_DEATH(r.gauge("dup", "Now a gauge."), "another type");
  EXPECT_DEATH(r.counter("1bad", "Bad name."), "invalid metric name");
  EXPECT_DEATH(r.counter("ok_total", "Bad label.", {{"le", "1"}}), "invalid label name");
  EXPECT_DEATH(r.counter("c_total", "c").inc(-1), "must be >= 0");
  EXPECT_DEATH(Histogram({1, 1}), "must increase");
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  Counter& c = r.counter("tokens_total", "Tokens.");
  Gauge& g = r.gauge("in_flight", "In flight.");
  Histogram& h = r.histogram("itl_seconds", "ITL.", {0.5, 1.5});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.inc();
        g.dec();
        h.observe(static_cast<double>((t + i) % 3));  // 0, 1, 2: one per bucket
        if (i % 5000 == 0) (void)r.render();          // rendering races with updates
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.value(), kThreads * kPerThread);
  EXPECT_EQ(g.value(), 0);
  EXPECT_EQ(h.count(), static_cast<uint64_t>(kThreads * kPerThread));
  const std::vector<uint64_t> counts = h.bucket_counts();
  EXPECT_EQ(counts[0] + counts[1] + counts[2], static_cast<uint64_t>(kThreads * kPerThread));
  // Each thread's i covers residues evenly up to a remainder of at most 2 per thread.
  for (uint64_t n : counts) EXPECT_NEAR(static_cast<double>(n), kThreads * kPerThread / 3.0, 16);
  // Sum of small integers is exact in double.
  EXPECT_EQ(h.sum(), static_cast<double>(counts[1] + 2 * counts[2]));
}

TEST(ServingMetricsTest, ExportsVllmNames) {
  Registry r;
  ServingMetrics m(r, "tiny");
  m.requests_running.set(3);
  m.requests_waiting.set(1);
  m.kv_cache_usage.set(0.5);
  m.prompt_tokens.inc(10);
  m.generation_tokens.inc(4);
  m.preemptions.inc();
  m.observe_ttft(0.03);
  m.observe_inter_token_latency(0.02);
  m.on_request_finished(FinishedReason::kLength, 0.4);
  m.on_request_finished(FinishedReason::kStop, 0.9);
  const std::string text = r.render();
  EXPECT_TRUE(contains(text,
                       "# TYPE vllm:num_requests_running gauge\n"
                       "vllm:num_requests_running{model_name=\"tiny\"} 3\n"));
  EXPECT_TRUE(contains(text, "vllm:num_requests_waiting{model_name=\"tiny\"} 1\n"));
  EXPECT_TRUE(contains(text, "vllm:kv_cache_usage_perc{model_name=\"tiny\"} 0.5\n"));
  EXPECT_TRUE(contains(text,
                       "# TYPE vllm:prompt_tokens_total counter\n"
                       "vllm:prompt_tokens_total{model_name=\"tiny\"} 10\n"));
  EXPECT_TRUE(contains(text, "vllm:generation_tokens_total{model_name=\"tiny\"} 4\n"));
  EXPECT_TRUE(contains(text, "vllm:num_preemptions_total{model_name=\"tiny\"} 1\n"));
  EXPECT_TRUE(
      contains(text,
               "# TYPE vllm:request_success_total counter\n"
               "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"stop\"} 1\n"
               "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"} 1\n"
               "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"abort\"} 0\n"));
  EXPECT_TRUE(contains(text, "# TYPE vllm:time_to_first_token_seconds histogram\n"));
  EXPECT_TRUE(
      contains(text,
               "vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.02\"} 0\n"
               "vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.04\"} 1\n"));
  // Inter-token latency and its older alias carry the same observations.
  EXPECT_TRUE(contains(
      text, "vllm:inter_token_latency_seconds_bucket{model_name=\"tiny\",le=\"0.025\"} 1\n"));
  EXPECT_TRUE(contains(
      text, "vllm:time_per_output_token_seconds_bucket{model_name=\"tiny\",le=\"0.025\"} 1\n"));
  EXPECT_EQ(m.inter_token_latency.bucket_counts(), m.time_per_output_token.bucket_counts());
  EXPECT_TRUE(contains(text, "vllm:e2e_request_latency_seconds_count{model_name=\"tiny\"} 2\n"));
  EXPECT_TRUE(contains(text, "vllm:e2e_request_latency_seconds_sum{model_name=\"tiny\"} 1.3\n"));
  EXPECT_TRUE(contains(
      text, "vllm:e2e_request_latency_seconds_bucket{model_name=\"tiny\",le=\"+Inf\"} 2\n"));
}

TEST(ServingMetricsTest, BucketsIncreaseAndTwoModelsShareARegistry) {
  for (const auto& b : {ttft_buckets(), inter_token_buckets(), e2e_latency_buckets()}) {
    ASSERT_FALSE(b.empty());
    for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  }
  Registry r;
  ServingMetrics a(r, "a");
  ServingMetrics b(r, "b");
  a.prompt_tokens.inc(1);
  b.prompt_tokens.inc(2);
  EXPECT_EQ(&a.request_success(FinishedReason::kAbort), &a.request_success_abort);
  const std::string text = r.render();
  EXPECT_TRUE(contains(text,
                       "vllm:prompt_tokens_total{model_name=\"a\"} 1\n"
                       "vllm:prompt_tokens_total{model_name=\"b\"} 2\n"));
  EXPECT_EQ(text.find("# TYPE vllm:prompt_tokens_total"),
            text.rfind("# TYPE vllm:prompt_tokens_total"));
}

}  // namespace
}  // namespace msi::metrics

#include "bench/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/check.h"

namespace msi::bench {
namespace {

constexpr int kTableWidth = 50;

std::string rule(const std::string& title, char fill) {
  const int n = kTableWidth - static_cast<int>(title.size());
  const int left = std::max(0, n / 2);
  const int right = std::max(0, n - left);
  return std::string(static_cast<size_t>(left), fill) + title +
         std::string(static_cast<size_t>(right), fill) + "\n";
}

std::string row(const std::string& label, const std::string& value) {
  return fmt::format("{:<40}{:<10}\n", label, value);
}

void stats_rows(std::string& out, const std::string& title, const std::string& name,
                const LatencyStats& s) {
  out += rule(title, '-');
  out += row(fmt::format("Mean {} (ms):", name), fmt::format("{:.2f}", s.mean_ms));
  out += row(fmt::format("Median {} (ms):", name), fmt::format("{:.2f}", s.median_ms));
  out += row(fmt::format("P99 {} (ms):", name), fmt::format("{:.2f}", s.p99_ms));
}

void stats_json(nlohmann::json& j, const std::string& name, const LatencyStats& s) {
  j["mean_" + name + "_ms"] = s.mean_ms;
  j["median_" + name + "_ms"] = s.median_ms;
  j["std_" + name + "_ms"] = s.std_ms;
  j["p99_" + name + "_ms"] = s.p99_ms;
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  MSI_CHECK(!sorted.empty() && p >= 0.0 && p <= 100.0, "percentile {} of {} samples", p,
            sorted.size());
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (rank - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

LatencyStats summarize_ms(std::vector<double> seconds) {
  LatencyStats s;
  if (seconds.empty()) return s;
  std::sort(seconds.begin(), seconds.end());
  double sum = 0.0;
  for (double v : seconds) sum += v;
  const double mean = sum / static_cast<double>(seconds.size());
  double var = 0.0;
  for (double v : seconds) var += (v - mean) * (v - mean);
  var /= static_cast<double>(seconds.size());
  s.mean_ms = mean * 1e3;
  s.median_ms = percentile(seconds, 50.0) * 1e3;
  s.std_ms = std::sqrt(var) * 1e3;
  s.p99_ms = percentile(seconds, 99.0) * 1e3;
  return s;
}

BenchMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s) {
  MSI_CHECK(duration_s > 0.0, "benchmark duration must be > 0, got {}", duration_s);
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts;
  std::vector<double> tpots;
  std::vector<double> itls;
  std::vector<double> e2els;
  for (const RequestOutput& o : outputs) {
    if (!o.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.total_input_tokens += o.prompt_len;
    m.total_output_tokens += o.n_output_tokens;
    ttfts.push_back(o.ttft_s);
    e2els.push_back(o.e2el_s);
    if (o.n_output_tokens > 1) {
      tpots.push_back((o.e2el_s - o.ttft_s) / static_cast<double>(o.n_output_tokens - 1));
    }
    itls.insert(itls.end(), o.itl_s.begin(), o.itl_s.end());
  }
  m.request_throughput = static_cast<double>(m.completed) / duration_s;
  m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
  m.total_token_throughput =
      static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
  m.ttft = summarize_ms(std::move(ttfts));
  m.tpot = summarize_ms(std::move(tpots));
  m.itl = summarize_ms(std::move(itls));
  m.e2el = summarize_ms(std::move(e2els));
  return m;
}

std::string format_table(const BenchMetrics& m, const std::vector<std::string>& header) {
  std::string out;
  for (const std::string& line : header) out += line + "\n";
  out += rule(" Serving Benchmark Result ", '=');
  out += row("Successful requests:", fmt::format("{}", m.completed));
  out += row("Failed requests:", fmt::format("{}", m.failed));
  out += row("Benchmark duration (s):", fmt::format("{:.2f}", m.duration_s));
  out += row("Total input tokens:", fmt::format("{}", m.total_input_tokens));
  out += row("Total generated tokens:", fmt::format("{}", m.total_output_tokens));
  out += row("Request throughput (req/s):", fmt::format("{:.2f}", m.request_throughput));
  out += row("Output token throughput (tok/s):", fmt::format("{:.2f}", m.output_throughput));
  out += row("Total token throughput (tok/s):", fmt::format("{:.2f}", m.total_token_throughput));
  stats_rows(out, "Time to First Token", "TTFT", m.ttft);
  stats_rows(out, "Time per Output Token (excl. 1st token)", "TPOT", m.tpot);
  stats_rows(out, "Inter-token Latency", "ITL", m.itl);
  stats_rows(out, "End-to-end Latency", "E2EL", m.e2el);
  out += std::string(kTableWidth, '=') + "\n";
  return out;
}

nlohmann::json metrics_json(const BenchMetrics& m) {
  nlohmann::json j;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input_tokens;
  j["total_output_tokens"] = m.total_output_tokens;
  j["duration"] = m.duration_s;
  j["request_throughput"] = m.request_throughput;
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  stats_json(j, "ttft", m.ttft);
  stats_json(j, "tpot", m.tpot);
  stats_json(j, "itl", m.itl);
  stats_json(j, "e2el", m.e2el);
  return j;
}

}  // namespace msi::bench

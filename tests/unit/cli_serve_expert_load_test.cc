// `msinfer serve` expert-load statistics end to end, on tiny-qwen2-moe (MoE layers 0 and 2, dense
// layer 1): after completions, /metrics has one msinfer:expert_tokens_total series per MoE layer
// and expert whose sum per layer is n_experts_per_tok × the tokens that went through the layer
// (every prompt token and every completion token but the last); GET /expert_load has the bench's
// "expert_load" shape (what `msinfer plan --expert-load` parses) with the same sums; POST
// /expert_load/reset returns the closed window and starts an empty one while the counters keep
// their totals. On threads and on a 2x2 shm deployment (reports over pipes).
#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "planner/expert_balance.h"
#include "server_process.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using msi::test::ServerProcess;

const fs::path kData = MSI_TEST_DATA_DIR;
constexpr int64_t kTopK = 2;     // tiny-qwen2-moe's num_experts_per_tok
constexpr int64_t kExperts = 8;  // its num_experts
const std::vector<bool> kMoeLayer = {true, false, true};

// msinfer:expert_tokens_total per (layer, expert).
std::map<std::pair<int, int>, double> expert_series(const std::string& metrics) {
  std::map<std::pair<int, int>, double> out;
  const std::regex re(
      R"re(msinfer:expert_tokens_total\{model_name="tiny-qwen2-moe",layer="(\d+)",expert="(\d+)"\} (\S+))re");
  for (auto it = std::sregex_iterator(metrics.begin(), metrics.end(), re);
       it != std::sregex_iterator(); ++it) {
    out[{std::stoi((*it)[1]), std::stoi((*it)[2])}] = std::stod((*it)[3]);
  }
  return out;
}

std::vector<double> layer_sums(const std::map<std::pair<int, int>, double>& series) {
  std::vector<double> sums(kMoeLayer.size(), 0.0);
  for (const auto& [key, v] : series) sums[static_cast<size_t>(key.first)] += v;
  return sums;
}

class Client {
 public:
  explicit Client(int port) : cli_("127.0.0.1", port) {
    cli_.set_read_timeout(60, 0);
    cli_.set_connection_timeout(10, 0);
  }
  // Tokens the completion sent through every layer.
  int64_t complete(const std::vector<int32_t>& prompt, int max_tokens) {
    const json body = {{"model", "tiny-qwen2-moe"},
                       {"prompt", prompt},
                       {"max_tokens", max_tokens},
                       {"temperature", 0},
                       {"ignore_eos", true}};
    auto res = cli_.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return 0;
    EXPECT_EQ(res->status, 200) << res->body;
    const json usage = json::parse(res->body)["usage"];
    EXPECT_EQ(usage["completion_tokens"], max_tokens);
    return usage["prompt_tokens"].get<int64_t>() + usage["completion_tokens"].get<int64_t>() - 1;
  }
  std::string metrics() {
    auto res = cli_.Get("/metrics");
    EXPECT_TRUE(res && res->status == 200);
    return res ? res->body : "";
  }
  json expert_load() {
    auto res = cli_.Get("/expert_load");
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    return json::parse(res->body);
  }
  json reset() {
    auto res = cli_.Post("/expert_load/reset", "", "application/json");
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body);
  }
  // Waits (the workers report at most a second late, exactly once idle) until every MoE layer's
  // counter sum reaches top_k × tokens; returns the series.
  std::map<std::pair<int, int>, double> await_counters(int64_t tokens) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::map<std::pair<int, int>, double> series;
    for (;;) {
      series = expert_series(metrics());
      const std::vector<double> sums = layer_sums(series);
      if ((sums[0] >= static_cast<double>(kTopK * tokens) &&
           sums[2] >= static_cast<double>(kTopK * tokens)) ||
          std::chrono::steady_clock::now() > deadline) {
        return series;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  httplib::Client cli_;
};

void expect_window(const json& w, int64_t tokens, const std::string& what) {
  EXPECT_EQ(w["n_experts"], kExperts) << what;
  EXPECT_TRUE(w["window_steps"].is_number_integer()) << what;
  EXPECT_GE(w["window_seconds"].get<double>(), 0.0) << what;
  ASSERT_EQ(w["tokens_per_expert"].size(), kMoeLayer.size()) << what;
  for (size_t l = 0; l < kMoeLayer.size(); ++l) {
    const auto row = w["tokens_per_expert"][l].get<std::vector<int64_t>>();
    if (!kMoeLayer[l]) {
      EXPECT_TRUE(row.empty()) << what << ": dense layer " << l;
      continue;
    }
    ASSERT_EQ(row.size(), static_cast<size_t>(kExperts)) << what;
    int64_t sum = 0;
    for (int64_t v : row) sum += v;
    EXPECT_EQ(sum, kTopK * tokens) << what << ": layer " << l;
  }
  if (tokens > 0) {
    EXPECT_GT(w["window_steps"].get<int64_t>(), 0) << what;
    auto stats = msi::parse_expert_load(w);  // what `msinfer plan --expert-load` reads
    EXPECT_TRUE(stats.is_ok()) << what << ": " << stats.status().to_string();
  }
}

void run_scenario(const std::vector<std::string>& extra) {
  ServerProcess server;
  std::vector<std::string> args = {"--model",           (kData / "tiny-qwen2-moe").string(),
                                   "--max-model-len",   "1024",
                                   "--kv-cache-tokens", "4096"};
  args.insert(args.end(), extra.begin(), extra.end());
  ASSERT_TRUE(server.start(args)) << server.log();
  Client http(server.port());

  // Before any request: every series is there, at zero.
  auto series = expert_series(http.metrics());
  EXPECT_EQ(series.size(), static_cast<size_t>(2 * kExperts))
      << "one series per MoE layer and expert";
  for (const auto& [key, v] : series) {
    EXPECT_TRUE(kMoeLayer[static_cast<size_t>(key.first)])
        << "a series for dense layer " << key.first;
    EXPECT_EQ(v, 0.0);
  }
  expect_window(http.expert_load(), 0, "empty window");

  const int64_t first =
      http.complete({5, 17, 29, 41, 53, 65, 77}, 6) + http.complete({100, 200, 300}, 4);
  series = http.await_counters(first);
  EXPECT_EQ(series.size(), static_cast<size_t>(2 * kExperts));
  EXPECT_EQ(layer_sums(series),
            (std::vector<double>{double(kTopK * first), 0.0, double(kTopK * first)}));
  const json window = http.expert_load();
  expect_window(window, first, "first window");
  for (size_t l = 0; l < kMoeLayer.size(); ++l) {
    for (int64_t e = 0; kMoeLayer[l] && e < kExperts; ++e) {
      EXPECT_EQ(window["tokens_per_expert"][l][e].get<double>(),
                (series[{static_cast<int>(l), static_cast<int>(e)}]))
          << "the window since start equals the counters, layer " << l << " expert " << e;
    }
  }

  // Reset: the closed window comes back, a new one starts empty; the counters keep counting.
  const json closed = http.reset();
  expect_window(closed, first, "closed window");
  EXPECT_EQ(closed["tokens_per_expert"], window["tokens_per_expert"]);
  const json fresh = http.expert_load();
  expect_window(fresh, 0, "fresh window");
  EXPECT_EQ(fresh["window_steps"], 0);

  const int64_t second = http.complete({9, 8, 7, 6, 5}, 3);
  series = http.await_counters(first + second);
  EXPECT_EQ(layer_sums(series)[0], double(kTopK * (first + second)));
  expect_window(http.expert_load(), second, "second window");
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServeExpertLoad, ThreadDeployment) { run_scenario({}); }

TEST(ServeExpertLoad, ShmDeploymentWithMicroBatches) {
  run_scenario({"--attention-workers", "2", "--expert-workers", "2", "--micro-batches", "2",
                "--transport", "shm"});
}

}  // namespace

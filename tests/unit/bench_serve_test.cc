// The serving benchmark against a fake OpenAI server run in-process on 127.0.0.1 (cpp-httplib):
// it streams a fixed number of SSE chunks with known sleeps and a usage chunk, answers /v1/models
// and /tokenize, and counts concurrent streams. Checks request and token counts, that the
// latencies are at least the server's sleeps, the JSON keys, seeded Poisson arrivals, the
// concurrency cap, HTTP and timeout failures, a server that is down, and the pieces (SSE lines,
// statistics, datasets) on their own.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/datasets.h"
#include "bench/openai_client.h"
#include "bench/report.h"
#include "bench/serve_bench.h"

namespace msi::bench {
namespace {

using json = nlohmann::json;

// cpp-httplib 0.11 listens with a backlog of 5, compiled into Debian's library: a burst of more
// simultaneous connects drops SYNs, and each dropped one costs a 1 s retransmission. Listening
// again on the bound socket (allowed on Linux) raises the backlog.
class WideBacklogServer : public httplib::Server {
 public:
  void raise_backlog() { ASSERT_EQ(::listen(svr_sock_, 1024), 0); }
};

struct FakeServerOptions {
  int n_chunks = 5;         // text chunks per response (fewer when max_tokens is smaller)
  int first_delay_ms = 30;  // before the first text chunk
  int gap_ms = 10;          // between text chunks
  int fail_status = 0;      // when non-zero, completions answer this status with an error body
};

// An OpenAI-compatible server that streams canned chunks.
class FakeServer {
 public:
  explicit FakeServer(FakeServerOptions options) : options_(options) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.set_tcp_nodelay(true);  // no Nagle delay between small chunks
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      json models = {{"object", "list"},
                     {"data",
                      {{{"id", "fake-model"}, {"object", "model"}},
                       {{"id", "other-model"}, {"object", "model"}}}}};
      res.set_content(models.dump(), "application/json");
    });
    server_.Post("/tokenize", [](const httplib::Request& req, httplib::Response& res) {
      // One token per whitespace-separated word.
      std::istringstream words(json::parse(req.body).at("prompt").get<std::string>());
      int64_t n = 0;
      for (std::string w; words >> w;) ++n;
      res.set_content(json{{"count", n}}.dump(), "application/json");
    });
    auto completions = [this](const httplib::Request& req, httplib::Response& res) {
      handle_completion(req, res, req.path == "/v1/chat/completions");
    };
    server_.Post("/v1/completions", completions);
    server_.Post("/v1/chat/completions", completions);
    port_ = server_.bind_to_any_port("127.0.0.1");
    server_.raise_backlog();
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  ~FakeServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  bool running() { return server_.is_running(); }
  int max_streams() const { return max_active_; }
  int n_requests() const { return n_requests_; }
  std::vector<json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  void handle_completion(const httplib::Request& req, httplib::Response& res, bool chat) {
    const json body = json::parse(req.body);
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(body);
    }
    ++n_requests_;
    if (options_.fail_status != 0) {
      res.status = options_.fail_status;
      res.set_content(R"({"error": {"message": "fake failure", "type": "server_error"}})",
                      "application/json");
      return;
    }
    const int n_chunks = std::min<int>(options_.n_chunks, body.at("max_tokens").get<int>());
    res.set_chunked_content_provider(
        "text/event-stream", [this, chat, n_chunks](size_t, httplib::DataSink& sink) {
          const int active = ++active_;
          int seen = max_active_.load();
          while (active > seen && !max_active_.compare_exchange_weak(seen, active)) {
          }
          auto send = [&](const json& event) {
            const std::string line = "data: " + event.dump() + "\n\n";
            return sink.write(line.data(), line.size());
          };
          if (chat) send({{"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}}}}}}});
          for (int i = 0; i < n_chunks; ++i) {
            sleep_ms(i == 0 ? options_.first_delay_ms : options_.gap_ms);
            std::string text = "t";  // not "t" + ...: GCC 12 warns falsely (-Wrestrict)
            text += std::to_string(i);
            json choice = chat ? json{{"index", 0}, {"delta", {{"content", text}}}}
                               : json{{"index", 0}, {"text", text}};
            if (!send({{"choices", {choice}}})) break;
          }
          send({{"choices", json::array()},
                {"usage", {{"prompt_tokens", 3}, {"completion_tokens", n_chunks}}}});
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          // Before done(): the client counts a request finished only after the final chunk.
          --active_;
          sink.done();
          return true;
        });
  }

  // Sleeps in small steps so that stopping the server does not wait for a long sleep.
  void sleep_ms(int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  FakeServerOptions options_;
  WideBacklogServer server_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::atomic<int> n_requests_{0};
  std::mutex mu_;
  std::vector<json> bodies_;
};

ServeBenchConfig small_config(int port) {
  ServeBenchConfig c;
  c.port = port;
  c.n_prompts = 4;
  c.random_input_len = 8;
  c.random_output_len = 5;
  c.timeout_s = 10;
  return c;
}

// A port with nothing listening: bound once, then released.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path =
      std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << text;
  return path.string();
}

// ---- the pieces ----

TEST(SseLineReaderTest, SplitsDataLinesAcrossReads) {
  SseLineReader reader;
  std::vector<std::string> got;
  auto on_data = [&](std::string_view d) {
    got.emplace_back(d);
    return true;
  };
  EXPECT_TRUE(reader.feed(": keep-alive comment\r\ndata: {\"a\":1}\r\n\r\nda", on_data));
  EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}"}));
  EXPECT_TRUE(reader.feed("ta:{\"b\":2}\n\nevent: x\ndata: [DO", on_data));
  EXPECT_TRUE(reader.feed("NE]\n", on_data));
  EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"}));
  // on_data returning false stops the feed.
  SseLineReader stopper;
  int n = 0;
  EXPECT_FALSE(stopper.feed("data: 1\ndata: 2\n", [&](std::string_view) { return ++n < 1; }));
  EXPECT_EQ(n, 1);
}

TEST(BenchReportTest, StatisticsMatchNumpy) {
  const std::vector<double> sorted = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(sorted, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(sorted, 99), 3.97);  // numpy.percentile([1,2,3,4], 99)
  EXPECT_DOUBLE_EQ(percentile(sorted, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(sorted, 100), 4);
  const LatencyStats s = summarize_ms({0.004, 0.001, 0.003, 0.002});
  EXPECT_NEAR(s.mean_ms, 2.5, 1e-9);
  EXPECT_NEAR(s.median_ms, 2.5, 1e-9);
  EXPECT_NEAR(s.std_ms, std::sqrt(1.25), 1e-9);  // population std, as numpy.std
  EXPECT_NEAR(s.p99_ms, 3.97, 1e-9);
  const LatencyStats none = summarize_ms({});
  EXPECT_EQ(none.mean_ms, 0);
  EXPECT_EQ(none.p99_ms, 0);
}

TEST(BenchReportTest, ComputesVllmMetrics) {
  std::vector<RequestOutput> outs(3);
  outs[0].success = true;
  outs[0].prompt_len = 10;
  outs[0].n_output_tokens = 5;
  outs[0].ttft_s = 0.1;
  outs[0].e2el_s = 0.5;  // TPOT (0.5 - 0.1) / 4 = 0.1
  outs[0].itl_s = {0.1, 0.1, 0.1, 0.1};
  outs[1].success = true;
  outs[1].prompt_len = 20;
  outs[1].n_output_tokens = 1;  // no TPOT for a single token
  outs[1].ttft_s = 0.3;
  outs[1].e2el_s = 0.3;
  outs[2].success = false;
  outs[2].prompt_len = 99;
  outs[2].error = "HTTP 500";
  const BenchMetrics m = compute_metrics(outs, 2.0);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input_tokens, 30);
  EXPECT_EQ(m.total_output_tokens, 6);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 3.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 18.0);
  EXPECT_NEAR(m.ttft.mean_ms, 200, 1e-9);
  EXPECT_NEAR(m.tpot.mean_ms, 100, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 100, 1e-9);
  EXPECT_NEAR(m.e2el.mean_ms, 400, 1e-9);
  const std::string table = format_table(m);
  EXPECT_NE(table.find("Successful requests:"), std::string::npos);
  EXPECT_NE(table.find("Mean TPOT (ms):"), std::string::npos);
  EXPECT_NE(table.find("P99 E2EL (ms):"), std::string::npos);
}

TEST(BenchArrivalsTest, PoissonIsSeededAndHasTheRate) {
  const std::vector<double> a = arrival_offsets(20000, 50.0, 7);
  EXPECT_EQ(a, arrival_offsets(20000, 50.0, 7));
  EXPECT_NE(a, arrival_offsets(20000, 50.0, 8));
  ASSERT_EQ(a.size(), 20000u);
  EXPECT_GT(a[0], 0.0);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  // Mean gap 1/rate = 20 ms; exponential gaps have std = mean, so the mean of 20000 is within
  // about 3% at five sigma.
  EXPECT_NEAR(a.back() / 20000.0, 0.02, 0.02 * 0.04);
  std::vector<double> gaps(a.size());
  std::adjacent_difference(a.begin(), a.end(), gaps.begin());
  const auto below_mean =
      std::count_if(gaps.begin(), gaps.end(), [](double g) { return g < 0.02; });
  EXPECT_NEAR(below_mean / 20000.0, 1.0 - std::exp(-1.0), 0.02);  // P(gap < mean) = 1 - 1/e
  EXPECT_EQ(arrival_offsets(3, kInfiniteRate, 1), (std::vector<double>{0, 0, 0}));
}

TEST(BenchDatasetTest, RandomIsSeededWithinRanges) {
  RandomDatasetConfig c;
  c.n_prompts = 200;
  c.input_len = 100;
  c.output_len = 20;
  c.range_ratio = 0.5;
  c.vocab_size = 50;
  c.seed = 3;
  auto a = sample_random_requests(c, nullptr);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  auto b = sample_random_requests(c, nullptr);
  ASSERT_TRUE(b.is_ok());
  bool any_differ = false;
  for (size_t i = 0; i < a->size(); ++i) {
    const BenchRequest& r = (*a)[i];
    EXPECT_EQ(r.prompt_ids, (*b)[i].prompt_ids);
    EXPECT_EQ(r.output_len, (*b)[i].output_len);
    EXPECT_GE(r.prompt_len, 50);
    EXPECT_LE(r.prompt_len, 150);
    EXPECT_EQ(r.prompt_len, static_cast<int64_t>(r.prompt_ids.size()));
    EXPECT_GE(r.output_len, 10);
    EXPECT_LE(r.output_len, 30);
    for (int32_t id : r.prompt_ids) ASSERT_TRUE(id >= 0 && id < 50);
    any_differ |= r.prompt_len != (*a)[0].prompt_len;
  }
  EXPECT_TRUE(any_differ);

  c.range_ratio = 0;
  c.text = true;
  auto words = sample_random_requests(c, [](const std::string& t) -> Result<int64_t> {
    return static_cast<int64_t>(t.size());  // a stand-in tokenizer: one token per byte
  });
  ASSERT_TRUE(words.is_ok());
  const BenchRequest& w = words->front();
  EXPECT_TRUE(w.prompt_ids.empty());
  EXPECT_EQ(std::count(w.prompt_text.begin(), w.prompt_text.end(), ' '), 99);
  EXPECT_EQ(w.prompt_len, static_cast<int64_t>(w.prompt_text.size()));
  EXPECT_EQ(w.output_len, 20);

  c.range_ratio = 1.0;
  EXPECT_FALSE(sample_random_requests(c, nullptr).is_ok());
}

TEST(BenchDatasetTest, ShareGptTakesTheFirstHumanTurnAndSkipsShortOnes) {
  const std::string path = write_temp("sharegpt", R"([
    {"conversations": [{"from": "human", "value": "only one turn"}]},
    {"conversations": [{"from": "human", "value": "hello there friend"},
                       {"from": "gpt", "value": "hi you"},
                       {"from": "human", "value": "more"}]},
    {"conversations": [{"from": "system", "value": "be nice"},
                       {"from": "human", "value": "a b c d"},
                       {"from": "gpt", "value": "e f g"}]},
    {"conversations": []},
    {"id": "no conversations"}
  ])");
  const CountTokensFn count = [](const std::string& t) -> Result<int64_t> {
    std::istringstream ws(t);
    int64_t n = 0;
    for (std::string w; ws >> w;) ++n;
    return n;
  };
  auto reqs = load_sharegpt_requests(path, 2, 0, count);
  ASSERT_TRUE(reqs.is_ok()) << reqs.status().to_string();
  ASSERT_EQ(reqs->size(), 2u);
  std::vector<std::string> prompts = {(*reqs)[0].prompt_text, (*reqs)[1].prompt_text};
  std::sort(prompts.begin(), prompts.end());
  EXPECT_EQ(prompts, (std::vector<std::string>{"a b c d", "hello there friend"}));
  for (const BenchRequest& r : *reqs) {
    EXPECT_EQ(r.output_len, r.prompt_text == "a b c d" ? 3 : 2);
    EXPECT_EQ(r.prompt_len, r.prompt_text == "a b c d" ? 4 : 3);
  }
  // More prompts than usable conversations: repeated in order.
  auto five = load_sharegpt_requests(path, 5, 0, count);
  ASSERT_TRUE(five.is_ok());
  ASSERT_EQ(five->size(), 5u);
  EXPECT_EQ((*five)[2].prompt_text, (*five)[0].prompt_text);
  EXPECT_FALSE(load_sharegpt_requests(path + ".missing", 1, 0, count).is_ok());
  std::filesystem::remove(path);
}

TEST(BenchRequestBodyTest, AsksForAStreamWithUsage) {
  BenchRequest r;
  r.prompt_ids = {5, 6, 7};
  r.output_len = 9;
  const json c = make_request_body(r, "m", /*chat=*/false, /*ignore_eos=*/true);
  EXPECT_EQ(c["model"], "m");
  EXPECT_EQ(c["prompt"], json({5, 6, 7}));
  EXPECT_EQ(c["max_tokens"], 9);
  EXPECT_EQ(c["stream"], true);
  EXPECT_EQ(c["stream_options"]["include_usage"], true);
  EXPECT_EQ(c["ignore_eos"], true);
  r.prompt_text = "hi";
  const json chat = make_request_body(r, "m", /*chat=*/true, /*ignore_eos=*/false);
  EXPECT_EQ(chat["messages"], json::parse(R"([{"role": "user", "content": "hi"}])"));
  EXPECT_FALSE(chat.contains("ignore_eos"));
  EXPECT_FALSE(chat.contains("prompt"));
}

// ---- against the fake server ----

TEST(ServeBenchTest, CountsTokensAndTimesChunks) {
  FakeServer server({});
  ASSERT_TRUE(server.running());
  ServeBenchConfig c = small_config(server.port());
  c.ignore_eos = true;
  auto r = run_serve_bench(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->model, "fake-model");  // the first of /v1/models
  const BenchMetrics& m = r->metrics;
  EXPECT_EQ(m.completed, 4);
  EXPECT_EQ(m.failed, 0);
  EXPECT_EQ(m.total_input_tokens, 4 * 8);
  EXPECT_EQ(m.total_output_tokens, 4 * 5);  // from the usage chunks
  for (const RequestOutput& o : r->outputs) {
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.http_status, 200);
    EXPECT_EQ(o.n_output_tokens, 5);
    EXPECT_EQ(o.itl_s.size(), 4u);
    EXPECT_EQ(o.generated_text, "t0t1t2t3t4");
    EXPECT_GE(o.ttft_s, 0.030);
    EXPECT_GE(o.e2el_s, 0.030 + 4 * 0.010);
    EXPECT_GE(o.e2el_s, o.ttft_s);
  }
  // Each gap follows a 10 ms sleep; a late read can shorten one gap, not the mean of them all.
  EXPECT_GE(m.itl.mean_ms, 8.0);
  EXPECT_GE(m.tpot.mean_ms, 8.0);
  EXPECT_GE(m.ttft.median_ms, 30.0);
  EXPECT_GE(m.e2el.p99_ms, 70.0);
  EXPECT_LT(m.e2el.p99_ms, 5000.0);
  EXPECT_GT(m.duration_s, 0.07);
  EXPECT_NEAR(m.request_throughput, 4 / m.duration_s, 1e-9);

  const std::vector<json> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 4u);
  for (const json& b : bodies) {
    EXPECT_EQ(b["model"], "fake-model");
    EXPECT_EQ(b["prompt"].size(), 8u);
    EXPECT_EQ(b["max_tokens"], 5);
    EXPECT_EQ(b["ignore_eos"], true);
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
  }

  const json j = r->to_json();
  for (const char* key : {"completed",
                          "failed",
                          "total_input_tokens",
                          "total_output_tokens",
                          "duration",
                          "request_throughput",
                          "output_throughput",
                          "total_token_throughput",
                          "mean_ttft_ms",
                          "median_ttft_ms",
                          "p99_ttft_ms",
                          "std_ttft_ms",
                          "mean_tpot_ms",
                          "median_tpot_ms",
                          "p99_tpot_ms",
                          "std_tpot_ms",
                          "mean_itl_ms",
                          "median_itl_ms",
                          "p99_itl_ms",
                          "std_itl_ms",
                          "mean_e2el_ms",
                          "median_e2el_ms",
                          "p99_e2el_ms",
                          "std_e2el_ms",
                          "model_id",
                          "num_prompts",
                          "request_rate",
                          "max_concurrency",
                          "input_lens",
                          "output_lens",
                          "ttfts",
                          "itls",
                          "errors"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["completed"], 4);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["itls"].size(), 4u);
  EXPECT_NE(r->to_table().find("Successful requests:"), std::string::npos);
}

TEST(ServeBenchTest, ChatWithShareGpt) {
  FakeServer server({});
  const std::string path = write_temp("sharegpt_chat", R"([
    {"conversations": [{"from": "human", "value": "tell me a story"},
                       {"from": "gpt", "value": "one two three"}]}
  ])");
  ServeBenchConfig c = small_config(server.port());
  c.endpoint = "/v1/chat/completions";
  c.dataset_name = "sharegpt";
  c.dataset_path = path;
  c.n_prompts = 2;
  c.model = "other-model";
  auto r = run_serve_bench(c);
  std::filesystem::remove(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metrics.completed, 2);
  EXPECT_EQ(r->metrics.total_input_tokens, 2 * 4);   // "tell me a story" through /tokenize
  EXPECT_EQ(r->metrics.total_output_tokens, 2 * 3);  // max_tokens 3 from the gpt turn
  for (const RequestOutput& o : r->outputs) {
    // The role-only first chunk is not a token: TTFT waits for text, and 3 texts make 2 gaps.
    EXPECT_GE(o.ttft_s, 0.030);
    EXPECT_EQ(o.itl_s.size(), 2u);
  }
  for (const json& b : server.bodies()) {
    EXPECT_EQ(b["model"], "other-model");
    EXPECT_EQ(b["messages"][0]["content"], "tell me a story");
    EXPECT_EQ(b["max_tokens"], 3);
  }
}

TEST(ServeBenchTest, RandomWordsOnChat) {
  FakeServer server({});
  ServeBenchConfig c = small_config(server.port());
  c.endpoint = "/v1/chat/completions";
  c.n_prompts = 2;
  auto r = run_serve_bench(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metrics.completed, 2);
  EXPECT_EQ(r->metrics.total_input_tokens, 2 * 8);  // 8 words, counted by /tokenize
  for (const json& b : server.bodies()) {
    EXPECT_TRUE(b["messages"][0]["content"].is_string());
  }
}

TEST(ServeBenchTest, MaxConcurrencyIsRespected) {
  FakeServer server({});
  ServeBenchConfig c = small_config(server.port());
  c.n_prompts = 12;
  c.max_concurrency = 3;
  auto r = run_serve_bench(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metrics.completed, 12);
  EXPECT_LE(server.max_streams(), 3);
  EXPECT_GE(server.max_streams(), 2);  // the cap, not serialization
  EXPECT_LE(r->max_in_flight, 3);
  // Four waves of at least 70 ms each.
  EXPECT_GE(r->metrics.duration_s, 4 * 0.070);

  FakeServer unlimited_server({});
  c.port = unlimited_server.port();
  c.max_concurrency = 0;
  c.n_prompts = 8;
  auto u = run_serve_bench(c);
  ASSERT_TRUE(u.is_ok());
  EXPECT_GE(unlimited_server.max_streams(), 4);  // all at once: they overlap
}

TEST(ServeBenchTest, PoissonArrivalsPaceTheRequests) {
  FakeServer server({.n_chunks = 2, .first_delay_ms = 5, .gap_ms = 1});
  ServeBenchConfig c = small_config(server.port());
  c.n_prompts = 10;
  c.request_rate = 40;
  c.seed = 11;
  auto r = run_serve_bench(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->arrival_s, arrival_offsets(10, 40, 11));
  for (size_t i = 0; i < r->outputs.size(); ++i) {
    EXPECT_GE(r->outputs[i].start_s, r->arrival_s[i] - 1e-3) << i;
    EXPECT_LT(r->outputs[i].start_s, r->arrival_s[i] + 0.5) << i;
  }
  EXPECT_GE(r->metrics.duration_s, r->arrival_s.back());
  EXPECT_EQ(r->to_json()["request_rate"], 40.0);
}

TEST(ServeBenchTest, HttpErrorsAreCountedAsFailures) {
  FakeServer server({.fail_status = 500});
  ServeBenchConfig c = small_config(server.port());
  c.n_prompts = 3;
  auto r = run_serve_bench(c);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metrics.completed, 0);
  EXPECT_EQ(r->metrics.failed, 3);
  for (const RequestOutput& o : r->outputs) {
    EXPECT_FALSE(o.success);
    EXPECT_EQ(o.http_status, 500);
    EXPECT_EQ(o.error, "HTTP 500: fake failure");
  }
  EXPECT_EQ(r->to_json()["errors"][0], "HTTP 500: fake failure");
}

TEST(ServeBenchTest, SlowServerTimesOut) {
  FakeServer server({.first_delay_ms = 5000});
  ServeBenchConfig c = small_config(server.port());
  c.n_prompts = 2;
  c.timeout_s = 0.3;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_serve_bench(c);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metrics.failed, 2);
  EXPECT_NE(r->outputs[0].error.find("timed out"), std::string::npos) << r->outputs[0].error;
  EXPECT_LT(elapsed, 3.0);
}

TEST(ServeBenchTest, ServerDownIsAClearError) {
  ServeBenchConfig c = small_config(free_port());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_serve_bench(c);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot reach the server at http://127.0.0.1:"),
            std::string::npos)
      << r.status().message();
  EXPECT_LT(elapsed, 5.0);
}

TEST(ServeBenchTest, RejectsBadConfigs) {
  ServeBenchConfig c;
  c.endpoint = "/v1/embeddings";
  EXPECT_EQ(run_serve_bench(c).status().code(), StatusCode::kInvalidArgument);
  c = ServeBenchConfig{};
  c.dataset_name = "sharegpt";
  EXPECT_EQ(run_serve_bench(c).status().code(), StatusCode::kInvalidArgument);
  c = ServeBenchConfig{};
  c.request_rate = 0;
  EXPECT_EQ(run_serve_bench(c).status().code(), StatusCode::kInvalidArgument);
  c = ServeBenchConfig{};
  c.timeout_s = -1;
  EXPECT_EQ(run_serve_bench(c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msi::bench

// `msinfer serve` end to end: the real server binary over HTTP. Greedy outputs match the
// fixtures' references token for token; streams are OpenAI's exact chunk format; 64 concurrent
// streaming clients each get what they get alone (also on a 2x2 shm deployment with 2
// micro-batches); every bad input is a 4xx with an OpenAI error object and the server keeps
// serving; a client that disconnects mid-stream frees its KV blocks; SIGTERM exits 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server_process.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using msi::test::ServerProcess;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

json reference(const std::string& fixture) {
  const fs::path recomputed = kData / fixture / "reference-recomputed.json";
  return json::parse(msi::test::slurp(fs::exists(recomputed) ? recomputed : kData / fixture / "reference.json"));
}

struct Http {
  explicit Http(int port) : cli("127.0.0.1", port) {
    cli.set_read_timeout(120, 0);
    cli.set_connection_timeout(10, 0);
  }
  httplib::Result post(const std::string& path, const json& body, const httplib::Headers& h = {}) {
    return cli.Post(path.c_str(), h, body.dump(), "application/json");
  }
  httplib::Client cli;
};

// The SSE "data:" payloads of a stream, in order ("[DONE]" included).
std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

// Streams a request; returns the concatenated text and checks the chunk format.
std::string stream_text(Http& http, const std::string& path, json body, bool chat, json* usage = nullptr) {
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto res = http.post(path, body);
  EXPECT_TRUE(res);
  if (!res) return "";
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  const auto payloads = sse_payloads(res->body);
  EXPECT_GE(payloads.size(), 3u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string text;
  bool finished = false;
  for (size_t i = 0; i + 1 < payloads.size(); ++i) {
    const json chunk = json::parse(payloads[i]);
    EXPECT_EQ(chunk["object"], chat ? "chat.completion.chunk" : "text_completion");
    if (chunk["choices"].empty()) {  // the usage chunk, last before [DONE]
      EXPECT_EQ(i + 2, payloads.size());
      if (usage) *usage = chunk["usage"];
      continue;
    }
    const json& c = chunk["choices"][0];
    if (chat) {
      if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    } else {
      text += c["text"].get<std::string>();
    }
    if (!c["finish_reason"].is_null()) finished = true;
  }
  EXPECT_TRUE(finished);
  return text;
}

class ServeFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "1024",
                                "--kv-cache-tokens", "16384", "--max-body-mb", "1"}))
        << server_->log();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0) << server_->log();
    delete server_;
  }
  static ServerProcess* server_;
};
ServerProcess* ServeFixture::server_ = nullptr;

TEST_F(ServeFixture, CompletionsAndChatMatchTheReferencesStreamingOrNot) {
  Http http(server_->port());
  for (const auto& c : reference("tiny-mixtral")["cases"]) {
    const bool chat = c["kind"] == "chat";
    json body = {{"model", "tiny-mixtral"}, {"max_tokens", 10}, {"temperature", 0}};
    if (chat) body["messages"] = c["prompt"];
    else body["prompt"] = c["prompt_ids"];  // token ids: exactly the reference's prompt
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    auto res = http.post(path, body);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json r = json::parse(res->body);
    const json& choice = r["choices"][0];
    const std::string text = chat ? choice["message"]["content"].get<std::string>() : choice["text"].get<std::string>();
    EXPECT_EQ(text, c["output_text"].get<std::string>()) << c["prompt"].dump();
    EXPECT_EQ(r["usage"]["prompt_tokens"], c["prompt_ids"].size());
    EXPECT_EQ(r["usage"]["completion_tokens"], 10);
    EXPECT_EQ(choice["finish_reason"], "length");
    json usage;
    EXPECT_EQ(stream_text(http, path, body, chat, &usage), text);
    EXPECT_EQ(usage["completion_tokens"], 10);
  }
  // A text prompt is tokenized like transformers did.
  const json first = reference("tiny-mixtral")["cases"][0];
  auto res = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", first["prompt"]}, {"max_tokens", 10},
                                           {"temperature", 0}});
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["choices"][0]["text"], first["output_text"]);
}

TEST_F(ServeFixture, ModelsHealthTokenizeDetokenizeMetrics) {
  Http http(server_->port());
  auto models = http.cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "tiny-mixtral");
  auto health = http.cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const json first = reference("tiny-mixtral")["cases"][0];
  auto tok = http.post("/tokenize", {{"prompt", first["prompt"]}});
  ASSERT_TRUE(tok);
  EXPECT_EQ(json::parse(tok->body)["tokens"], first["prompt_ids"]);
  EXPECT_EQ(json::parse(tok->body)["count"], first["prompt_ids"].size());
  auto detok = http.post("/detokenize", {{"tokens", first["output_ids"]}});
  ASSERT_TRUE(detok);
  EXPECT_EQ(detok->status, 200) << detok->body;
  auto metrics = http.cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name : {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                           "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                           "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                           "vllm:e2e_request_latency_seconds_bucket"}) {
    EXPECT_THAT(metrics->body, HasSubstr(name));
  }
}

TEST_F(ServeFixture, StopStringsStopTokensAndLogprobs) {
  Http http(server_->port());
  const json first = reference("tiny-mixtral")["cases"][0];
  const std::string full = first["output_text"];
  const std::string stop = full.substr(4, 3);
  auto res = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", first["prompt_ids"]}, {"max_tokens", 10},
                                           {"temperature", 0}, {"stop", stop}, {"logprobs", 2}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json c = json::parse(res->body)["choices"][0];
  EXPECT_EQ(c["text"], full.substr(0, full.find(stop)));
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_EQ(c["stop_reason"], stop);
  EXPECT_FALSE(c["logprobs"]["token_logprobs"].empty());
  EXPECT_EQ(c["logprobs"]["top_logprobs"][0].size(), 2u);
  // stop_token_ids: the third greedy token ends it, reported as stop_reason.
  const int third = first["output_ids"][2];
  res = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", first["prompt_ids"]}, {"max_tokens", 10},
                                      {"temperature", 0}, {"stop_token_ids", {third}}});
  ASSERT_TRUE(res);
  const json s = json::parse(res->body);
  EXPECT_EQ(s["usage"]["completion_tokens"], 3);
  EXPECT_EQ(s["choices"][0]["stop_reason"], third);
  // min_tokens forbids it early; ignore_eos and max_tokens still bound the length.
  res = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", first["prompt_ids"]}, {"max_tokens", 6},
                                      {"temperature", 0}, {"stop_token_ids", {third}}, {"min_tokens", 5}});
  ASSERT_TRUE(res);
  EXPECT_GE(json::parse(res->body)["usage"]["completion_tokens"], 5);
}

TEST_F(ServeFixture, BadInputsGetOpenAiErrorsAndTheServerKeepsServing) {
  Http http(server_->port());
  auto expect_error = [&](const std::string& path, const std::string& body, int status, const std::string& message) {
    auto res = http.cli.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, status) << body << " -> " << res->body;
    const json e = json::parse(res->body, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << res->body;
    EXPECT_EQ(e["error"]["code"], status);
    EXPECT_THAT(e["error"]["message"].get<std::string>(), HasSubstr(message)) << body;
  };
  for (int round = 0; round < 3; ++round) {  // a burst, then the server still answers correctly
    expect_error("/v1/completions", "{not json", 400, "JSON");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": 5})", 400, "prompt");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": "hi", "max_tokens": "x"})", 400, "max_tokens");
    expect_error("/v1/completions", R"({"model": "gpt-9", "prompt": "hi"})", 404, "does not exist");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": ""})", 400, "empty");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": [1, 99999]})", 400, "outside the vocabulary");
    std::string long_prompt = "[";
    for (int i = 0; i < 1100; ++i) long_prompt += (i ? ",5" : "5");
    long_prompt += "]";
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": )" + long_prompt + "}", 400,
                 "maximum context length");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": "hi", "max_tokens": 0})", 400, "max_tokens");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": "hi", "max_tokens": 5000})", 400,
                 "maximum context length");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": "hi", "n": 2})", 400, "n");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": "hi", "temperature": -1})", 400, "temperature");
    expect_error("/v1/chat/completions", R"({"model": "tiny-mixtral", "messages": []})", 400, "messages");
    expect_error("/v1/chat/completions", R"({"model": "tiny-mixtral", "messages": [{"role": "wizard", "content": "x"}]})",
                 400, "role");
    expect_error("/v1/completions", R"({"model": "tiny-mixtral", "prompt": ")" + std::string(2 << 20, 'a') + "\"}", 413,
                 "too large");
    auto missing = http.cli.Get("/v1/nothing");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
  }
  const json first = reference("tiny-mixtral")["cases"][0];
  auto ok = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", first["prompt_ids"]}, {"max_tokens", 10},
                                          {"temperature", 0}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(json::parse(ok->body)["choices"][0]["text"], first["output_text"]);
}

// The value of the first sample line of `name` whose labels contain `label` ("" for any).
double metric(const std::string& text, const std::string& name, const std::string& label = "") {
  size_t at = 0;
  while ((at = text.find("\n" + name + "{", at)) != std::string::npos) {
    const size_t eol = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, eol - at - 1);
    if (line.find(label) != std::string::npos) return std::stod(line.substr(line.rfind(' ') + 1));
    at = eol;
  }
  return -1;
}

TEST_F(ServeFixture, DisconnectMidStreamFreesKvBlocks) {
  Http http(server_->port());
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.set_header("Content-Type", "application/json");
  req.body = json{{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 1000}, {"ignore_eos", true},
                  {"temperature", 0}, {"stream", true}}.dump();
  std::atomic<int> chunks{0};
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 5; };  // then hang up
  httplib::Response res;
  httplib::Error err;
  http.cli.send(req, res, err);
  EXPECT_GE(chunks.load(), 5);
  // The abort reaches the worker within a step or two: KV usage back to 0, counted as "abort".
  std::string text;
  for (int i = 0; i < 200; ++i) {
    auto m = Http(server_->port()).cli.Get("/metrics");
    ASSERT_TRUE(m);
    text = m->body;
    if (metric(text, "vllm:kv_cache_usage_perc") == 0 && metric(text, "vllm:request_success_total", "finished_reason=\"abort\"") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(metric(text, "vllm:kv_cache_usage_perc"), 0) << text;
  EXPECT_GE(metric(text, "vllm:request_success_total", "finished_reason=\"abort\""), 1) << text;
}

// 64 concurrent streaming clients, each with its own prompt: each gets exactly its output alone.
void concurrent_clients_match_alone(int port) {
  std::vector<json> bodies;
  for (int i = 0; i < 64; ++i) {
    json prompt = json::array();
    for (int t = 0; t < 3 + i % 7; ++t) prompt.push_back(1 + (i * 37 + t * 11) % 1900);
    bodies.push_back({{"model", "tiny-mixtral"}, {"prompt", prompt}, {"max_tokens", 8 + i % 5}, {"temperature", 0},
                      {"ignore_eos", true}});
  }
  std::vector<std::string> alone;
  for (const json& b : bodies) {
    Http http(port);
    auto res = http.post("/v1/completions", b);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    alone.push_back(json::parse(res->body)["choices"][0]["text"]);
  }
  std::vector<std::future<std::string>> together;
  for (const json& b : bodies) {
    together.push_back(std::async(std::launch::async, [port, b] {
      Http http(port);
      return stream_text(http, "/v1/completions", b, false);
    }));
  }
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << "client " << i;
}

TEST_F(ServeFixture, SixtyFourConcurrentStreamsEachGetTheirOwnOutput) { concurrent_clients_match_alone(server_->port()); }

TEST(Serve, DisaggregatedShmDeploymentServesConcurrentStreams) {
  ServerProcess server;
  ASSERT_TRUE(server.start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "1024", "--kv-cache-tokens",
                            "16384", "--attention-workers", "2", "--expert-workers", "2", "--micro-batches", "2",
                            "--transport", "shm"}))
      << server.log();
  concurrent_clients_match_alone(server.port());
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(Serve, ApiKeyAndConcurrencyLimit) {
  ServerProcess server;
  ASSERT_TRUE(server.start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "2048", "--api-key", "s3cret",
                            "--max-concurrent-requests", "1", "--reject-when-full"}))
      << server.log();
  Http http(server.port());
  const json body = {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 3}};
  auto res = http.post("/v1/completions", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], 401);
  const httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  res = http.post("/v1/completions", body, auth);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // One long request holds the only slot: a second one gets 503 at once.
  auto slow = std::async(std::launch::async, [&] {
    Http h(server.port());
    return h.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 1500},
                                      {"ignore_eos", true}}, auth);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  res = http.post("/v1/completions", body, auth);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(slow.get()->status, 200);
  res = http.post("/v1/completions", body, auth);  // the slot is free again
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(Serve, SigtermDuringAStreamExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "4096"})) << server.log();
  auto stream = std::async(std::launch::async, [&] {
    Http h(server.port());
    return h.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 4000},
                                      {"ignore_eos", true}, {"stream", true}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server.stop(), 0) << server.log();
  auto res = stream.get();
  // Cut short by the shutdown ("abort"), unless it was fast enough to finish first ("length").
  if (res) {
    EXPECT_TRUE(res->body.find("\"finish_reason\":\"abort\"") != std::string::npos ||
                res->body.find("\"finish_reason\":\"length\"") != std::string::npos);
  }
  EXPECT_THAT(server.log(), HasSubstr("SIGTERM: shutting down"));
}

}  // namespace

namespace {

// The official `openai` npm client against the real server: completions and chat, streaming and
// not, reproduce the fixture's references; errors reach it as APIError with the status.
TEST_F(ServeFixture, OfficialOpenAiClientLibrary) {
  const fs::path repo = kData.parent_path().parent_path();
  const fs::path script = repo / "tests/e2e/openai_client.mjs";
  const fs::path ref = kData / "tiny-mixtral" / "reference-recomputed.json";
  auto r = msi::test::run_program("/usr/bin/env", {"node", script.string(), std::to_string(server_->port()),
                                                   ref.string(), "tiny-mixtral"});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\n(needs node and scripts/fetch-test-deps.sh)";
  const json out = json::parse(r.out);
  const json cases = reference("tiny-mixtral")["cases"];
  ASSERT_EQ(out["results"].size(), cases.size() + 1);
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& got = out["results"][i];
    EXPECT_EQ(got["text"], cases[i]["output_text"]) << i;
    EXPECT_EQ(got["stream_text"], cases[i]["output_text"]) << i;
    EXPECT_EQ(got["finish_reason"], "length");
    EXPECT_EQ(got["usage"]["completion_tokens"], 10);
    EXPECT_EQ(got["stream_usage"]["completion_tokens"], 10);
    EXPECT_EQ(got["usage"]["prompt_tokens"], cases[i]["prompt_ids"].size());
    if (cases[i]["kind"] == "chat") {
      EXPECT_EQ(got["role"], "assistant");
      EXPECT_EQ(got["stream_role"], "assistant");
    }
  }
  EXPECT_EQ(out["results"].back()["status"], 404);
  EXPECT_EQ(out["models"], json::array({"tiny-mixtral"}));
}

}  // namespace

namespace {

TEST(Serve, AtTheConcurrencyLimitRequestsQueueUntilTheirTimeout) {
  ServerProcess server;
  ASSERT_TRUE(server.start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "4096",
                            "--max-concurrent-requests", "1", "--queue-timeout", "30"}))
      << server.log();
  // Two at once with one slot: the second waits for the first, then both succeed.
  auto first = std::async(std::launch::async, [&] {
    Http h(server.port());
    return h.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 300},
                                      {"ignore_eos", true}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Http http(server.port());
  auto second = http.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 3}});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_EQ(first.get()->status, 200);
  EXPECT_EQ(server.stop(), 0) << server.log();

  // With a short queue timeout, a request that cannot get a slot in time gets 503.
  ServerProcess strict;
  ASSERT_TRUE(strict.start({"--model", (kData / "tiny-mixtral").string(), "--max-model-len", "4096",
                            "--max-concurrent-requests", "1", "--queue-timeout", "0.05"}))
      << strict.log();
  auto hog = std::async(std::launch::async, [&] {
    Http h(strict.port());
    return h.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 4000},
                                      {"ignore_eos", true}});
  });
  // Wait until the hog holds the one slot (it is running), however slow the machine.
  {
    Http probe(strict.port());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool running = false;
    while (!running && std::chrono::steady_clock::now() < until) {
      auto m = probe.cli.Get("/metrics");
      if (m && m->body.find("vllm:num_requests_running{") != std::string::npos) {
        const size_t at = m->body.find("vllm:num_requests_running{");
        const size_t eol = m->body.find('\n', at);
        running = m->body.substr(at, eol - at).ends_with(" 1");
      }
      if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(running) << "the long request never started";
  }
  Http http2(strict.port());
  auto late = http2.post("/v1/completions", {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 3}});
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 503) << late->body;
  EXPECT_EQ(json::parse(late->body)["error"]["code"], 503);
  EXPECT_EQ(hog.get()->status, 200);
  EXPECT_EQ(strict.stop(), 0) << strict.log();
}

}  // namespace

// Expert-load statistics, counted on the attention side: the AttentionWorker's device tallies
// equal a direct count of the top-k ids it hands to its expert link (prefill and decode, several
// micro-batches, a dense layer), and restart at zero once taken; the report's JSON form
// round-trips; ExpertLoadWindow sums reports into totals and windows in the bench's "expert_load"
// shape; and the offline Engine, in several deployments, reports n_experts_per_tok × tokens
// processed per MoE layer (every prompt token and every generated token but the last goes through
// each layer).
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "engine/expert_load.h"
#include "engine/worker_channel.h"
#include "engine/worker_setup.h"

namespace msi {
namespace {

const std::string kData = MSI_TEST_DATA_DIR;

// Forwards to another link and tallies the top-k ids of every unit it sends, per layer.
class CountingLink final : public ExpertLink {
 public:
  CountingLink(ExpertLink& inner, int64_t n_layers, int64_t n_experts)
      : inner_(inner),
        n_experts_(n_experts),
        counts(static_cast<size_t>(n_layers * n_experts), 0) {}
  Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
              const Tensor& topk_weights, uint32_t flags) override {
    const int32_t* ids = topk_ids.as<int32_t>();  // the CPU backend: host memory
    for (int64_t i = 0; i < topk_ids.numel(); ++i)
      ++counts[static_cast<size_t>(unit.layer * n_experts_ + ids[i])];
    return inner_.send(unit, hidden, topk_ids, topk_weights, flags);
  }
  Result<uint32_t> receive(const UnitId& unit, const Tensor& out) override {
    return inner_.receive(unit, out);
  }
  void set_patient(bool patient) override { inner_.set_patient(patient); }

  ExpertLink& inner_;
  int64_t n_experts_;
  std::vector<int64_t> counts;  // [n_layers * n_experts]
};

class WorkerCountsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WorkerCountsTest, EqualADirectCountOfTheRoutedIds) {
  EngineOptions o;
  o.n_expert_workers = 0;
  o.kv_n_blocks = 32;
  o.max_model_len = 256;
  o.n_micro_batches = 2;
  auto setup = open_worker_setup(kData + "/" + GetParam(), o);
  ASSERT_TRUE(setup.is_ok()) << setup.status().to_string();
  const ModelConfig& c = setup->config;
  CpuBackend cpu;
  auto worker = make_attention_worker(c, *setup, cpu, o);
  ASSERT_TRUE(worker.is_ok()) << worker.status().to_string();
  auto colocated = make_colocated_link(c, *setup, cpu, o);
  ASSERT_TRUE(colocated.is_ok()) << colocated.status().to_string();
  CountingLink link(**colocated, c.n_layers, c.n_experts);
  AttentionWorker& w = **worker;

  // Two sequences: a prefill step (5 + 7 tokens, two micro-batches), then three decode steps.
  std::vector<std::vector<int32_t>> tokens = {{11, 22, 33, 44, 55}, {7, 8, 9, 10, 11, 12, 13}};
  ASSERT_TRUE(w.add_sequence(0).is_ok());
  ASSERT_TRUE(w.add_sequence(1).is_ok());
  const std::vector<float> greedy(8, 0.0f);
  std::vector<int32_t> next(2);
  int64_t n_tokens = 0;
  for (int64_t step = 0; step < 4; ++step) {
    std::vector<SeqChunk> chunks = {{0, tokens[0], true}, {1, tokens[1], true}};
    n_tokens += static_cast<int64_t>(tokens[0].size() + tokens[1].size());
    ASSERT_TRUE(w.begin_step(chunks, 2, step).is_ok());
    const int n_layers = static_cast<int>(c.n_layers);
    for (int l = 0; l < n_layers; ++l) {
      for (int mb = 0; mb < w.n_micro_batches(); ++mb) {
        if (l > 0) {
          ASSERT_TRUE(w.layer_combine(l - 1, mb, link).is_ok());
        }
        ASSERT_TRUE(w.layer_attention(l, mb, link).is_ok());
      }
    }
    for (int mb = 0; mb < w.n_micro_batches(); ++mb)
      ASSERT_TRUE(w.layer_combine(n_layers - 1, mb, link).is_ok());
    ASSERT_TRUE(w.finish_step_sample(greedy.data(), next.data()).is_ok());
    tokens = {{next[0]}, {next[1]}};
  }

  std::vector<int64_t> counts;
  ASSERT_TRUE(w.take_expert_counts(counts).is_ok());
  EXPECT_EQ(counts, link.counts);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto row = counts.begin() + l * c.n_experts;
    EXPECT_EQ(std::accumulate(row, row + c.n_experts, int64_t{0}),
              c.is_moe_layer(l) ? c.n_experts_per_tok * n_tokens : 0)
        << "layer " << l;
  }
  ASSERT_TRUE(w.take_expert_counts(counts).is_ok());
  EXPECT_EQ(counts, std::vector<int64_t>(counts.size(), 0)) << "taking the counts restarts them";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WorkerCountsTest,
                         ::testing::Values("tiny-mixtral", "tiny-qwen2-moe"), [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) ch = ch == '-' ? '_' : ch;
                           return s;
                         });

TEST(WorkerReportJson, ExpertTokensRoundTrip) {
  WorkerReport r;
  r.stats = {1, 2, 3, 4, 5};
  r.expert_tokens = {0, 3, 1, 1ll << 40, 7, 0};
  r.expert_steps = 9;
  auto back = report_from_json(nlohmann::json::parse(report_to_json(r).dump()));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->expert_tokens, r.expert_tokens);
  EXPECT_EQ(back->expert_steps, 9);

  WorkerReport none;
  const nlohmann::json j = report_to_json(none);
  EXPECT_FALSE(j.contains("expert_load")) << "reports without counts carry nothing extra";
  auto none_back = report_from_json(j);
  ASSERT_TRUE(none_back.is_ok());
  EXPECT_TRUE(none_back->expert_tokens.empty());
  EXPECT_EQ(none_back->expert_steps, 0);
}

TEST(ExpertLoadWindow, SumsReportsIntoTotalsAndWindows) {
  ModelConfig c;
  c.n_layers = 3;
  c.n_experts = 2;
  c.layer_is_moe = {true, false, true};
  ExpertLoadWindow load(c, 2);
  WorkerReport a, b;
  a.expert_tokens = {1, 2, 0, 0, 3, 4};
  a.expert_steps = 2;
  b.expert_tokens = {10, 0, 0, 0, 0, 5};
  b.expert_steps = 3;
  load.add(0, a);
  load.add(1, b);
  load.add(0, WorkerReport{});  // no counts
  EXPECT_EQ(load.totals(), (std::vector<int64_t>{11, 2, 0, 0, 3, 9}));
  const nlohmann::json w = load.window_json();
  EXPECT_EQ(w["n_experts"], 2);
  EXPECT_EQ(w["window_steps"], 3) << "the most steps of one worker";
  EXPECT_GE(w["window_seconds"].get<double>(), 0.0);
  EXPECT_EQ(w["tokens_per_expert"], nlohmann::json::parse("[[11, 2], [], [3, 9]]"));

  nlohmann::json closed = load.reset();
  closed.erase("window_seconds");
  nlohmann::json before = w;
  before.erase("window_seconds");
  EXPECT_EQ(closed, before) << "reset returns the closed window";
  const nlohmann::json fresh = load.window_json();
  EXPECT_EQ(fresh["window_steps"], 0);
  EXPECT_EQ(fresh["tokens_per_expert"], nlohmann::json::parse("[[0, 0], [], [0, 0]]"));
  EXPECT_EQ(load.totals(), (std::vector<int64_t>{11, 2, 0, 0, 3, 9})) << "totals survive a reset";
  load.add(1, a);
  EXPECT_EQ(load.window_json()["tokens_per_expert"], nlohmann::json::parse("[[1, 2], [], [3, 4]]"));
  EXPECT_EQ(load.window_json()["window_steps"], 2);
}

struct Deploy {
  std::string name;
  int m, n, micro_batches;
  bool eager;
};

class EngineExpertLoadTest : public ::testing::TestWithParam<Deploy> {};

TEST_P(EngineExpertLoadTest, CountsTopKTimesTheTokensOfEveryMoeLayer) {
  const Deploy& d = GetParam();
  EngineOptions o;
  o.n_attention_workers = d.m;
  o.n_expert_workers = d.n;
  o.n_micro_batches = d.micro_batches;
  o.enforce_eager = d.eager;
  o.kv_n_blocks = 64;
  o.max_model_len = 256;
  auto engine = Engine::create(kData + "/tiny-qwen2-moe", o);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  std::vector<GenerateRequest> requests(3);
  int64_t n_tokens = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    for (size_t t = 0; t < 4 + 3 * i; ++t)
      requests[i].prompt.push_back(static_cast<int32_t>(17 * t + i + 1));
    requests[i].sampling.max_tokens = 5 + static_cast<int64_t>(i);
    requests[i].sampling.ignore_eos = true;
    // The last token is sampled but never fed back.
    n_tokens +=
        static_cast<int64_t>(requests[i].prompt.size()) + requests[i].sampling.max_tokens - 1;
  }
  auto results = (*engine)->generate(requests);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  ASSERT_TRUE((*engine)->shutdown().is_ok());  // the workers flush their last counts as they stop

  const nlohmann::json load = (*engine)->expert_load_json();
  const ModelConfig& c = (*engine)->config();
  EXPECT_EQ(load["n_experts"], c.n_experts);
  EXPECT_GT(load["window_steps"].get<int64_t>(), 0);
  ASSERT_EQ(load["tokens_per_expert"].size(), static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto row = load["tokens_per_expert"][static_cast<size_t>(l)].get<std::vector<int64_t>>();
    if (!c.is_moe_layer(l)) {
      EXPECT_TRUE(row.empty()) << "dense layer " << l;
      continue;
    }
    ASSERT_EQ(row.size(), static_cast<size_t>(c.n_experts));
    EXPECT_EQ(std::accumulate(row.begin(), row.end(), int64_t{0}), c.n_experts_per_tok * n_tokens)
        << "layer " << l;
  }
}

INSTANTIATE_TEST_SUITE_P(Deployments, EngineExpertLoadTest,
                         ::testing::Values(Deploy{"colocated", 1, 0, 1, false},
                                           Deploy{"m1n1", 1, 1, 1, false},
                                           Deploy{"m2n3_mb2", 2, 3, 2, false},
                                           Deploy{"colocated_eager", 1, 0, 2, true}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace msi

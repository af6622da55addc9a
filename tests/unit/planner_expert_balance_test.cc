// Expert load balancing: skewed loads lower the most loaded worker (by packing, and by replicating
// a heavy hitter), uniform loads are never made worse than contiguous, every proposal is a valid
// ExpertPlacement within the slot budget that round-trips through JSON, the bench's "expert_load"
// parses (alone or inside a whole bench result), bad input is an error, and the simulator sees the
// balanced placement as a faster step.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "planner/expert_balance.h"
#include "planner/pipeline_sim.h"

namespace msi {
namespace {

using ::testing::HasSubstr;

ExpertLoadStats one_layer(std::vector<double> load) {
  ExpertLoadStats s;
  s.window_steps = 1;
  s.n_experts = static_cast<int64_t>(load.size());
  s.tokens_per_expert = {std::move(load)};
  return s;
}

// Zipf-like: expert e gets 1000 / (e + 1), hottest first (the worst case for contiguous).
std::vector<double> zipf(int64_t n_experts) {
  std::vector<double> load;
  for (int64_t e = 0; e < n_experts; ++e) load.push_back(1000.0 / static_cast<double>(e + 1));
  return load;
}

// Every expert on some worker, at most once per worker, no worker past its slots.
void expect_valid(const BalanceResult& r, int64_t n_experts) {
  std::vector<int> seen(static_cast<size_t>(n_experts), 0);
  for (int64_t w = 0; w < r.placement.n_workers(); ++w) {
    const auto& list = r.placement.experts_of(w);
    EXPECT_LE(static_cast<int64_t>(list.size()), r.slots_per_worker) << "worker " << w;
    EXPECT_EQ(std::set<int32_t>(list.begin(), list.end()).size(), list.size()) << "worker " << w;
    for (int32_t e : list) ++seen[static_cast<size_t>(e)];
  }
  int64_t copies = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    EXPECT_GE(seen[static_cast<size_t>(e)], 1) << "expert " << e;
    copies += seen[static_cast<size_t>(e)];
  }
  EXPECT_EQ(r.n_replicas, copies - n_experts);
}

TEST(ExpertBalanceTest, SkewedLoadLowersTheMostLoadedWorker) {
  const ExpertLoadStats s = one_layer(zipf(16));
  auto r = balance_experts(s, {.n_expert_workers = 4});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_valid(*r, 16);
  EXPECT_FALSE(r->kept_contiguous);
  // Contiguous: worker 0 holds experts 0-3 = 1000 + 500 + 333.3 + 250.
  EXPECT_NEAR(r->before.max, 2083.333, 1e-3);
  EXPECT_LT(r->after.max, r->before.max);
  EXPECT_LT(r->after.imbalance, r->before.imbalance);
  EXPECT_NEAR(r->after.mean, r->before.mean, 1e-9);  // the same tokens, moved
  EXPECT_LT(r->after.imbalance, 1.1);
}

TEST(ExpertBalanceTest, HeavyHitterIsReplicated) {
  // Expert 0 takes 800 of 870 tokens: no packing helps, replicas must.
  std::vector<double> load(8, 10.0);
  load[0] = 800.0;
  const ExpertLoadStats s = one_layer(load);
  auto r = balance_experts(s, {.n_expert_workers = 4});  // 3 slots a worker
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_valid(*r, 8);
  EXPECT_EQ(r->slots_per_worker, 3);
  EXPECT_GT(r->n_replicas, 0);
  int replicas_of_0 = 0;
  for (int64_t w = 0; w < 4; ++w) {
    const auto& list = r->placement.experts_of(w);
    replicas_of_0 += std::count(list.begin(), list.end(), 0);
  }
  EXPECT_EQ(replicas_of_0, 4);  // on every worker: 200 tokens each
  EXPECT_NEAR(r->before.max, 810.0, 1e-9);
  EXPECT_LT(r->after.max, 0.5 * r->before.max);
  // Without spare slots there is nothing to replicate into.
  auto tight = balance_experts(s, {.n_expert_workers = 4, .slots_per_worker = 2});
  ASSERT_TRUE(tight.is_ok()) << tight.status().to_string();
  EXPECT_EQ(tight->n_replicas, 0);
  EXPECT_GE(tight->after.max, 800.0);
}

TEST(ExpertBalanceTest, UniformLoadIsNoWorseThanContiguous) {
  for (auto [n_experts, n_workers] :
       std::vector<std::pair<int64_t, int64_t>>{{16, 4}, {10, 4}, {64, 8}, {7, 7}, {5, 1}}) {
    const ExpertLoadStats s = one_layer(std::vector<double>(static_cast<size_t>(n_experts), 12.0));
    auto r = balance_experts(s, {.n_expert_workers = n_workers});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    expect_valid(*r, n_experts);
    EXPECT_LE(r->after.max, r->before.max) << n_experts << " on " << n_workers;
    EXPECT_LE(r->after.layer_max_sum, r->before.layer_max_sum);
  }
}

TEST(ExpertBalanceTest, RandomLoadsGiveValidPlacementsThatRoundTrip) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t n_experts = std::uniform_int_distribution<int64_t>(2, 64)(rng);
    const int64_t n_workers = std::uniform_int_distribution<int64_t>(1, n_experts)(rng);
    const int64_t min_slots = (n_experts + n_workers - 1) / n_workers;
    const int64_t slots = min_slots + std::uniform_int_distribution<int64_t>(0, 3)(rng);
    ExpertLoadStats s;
    s.n_experts = n_experts;
    std::lognormal_distribution<double> heavy(0.0, 1.5);
    for (int l = 0; l < 3; ++l) {
      std::vector<double> layer;
      for (int64_t e = 0; e < n_experts; ++e) layer.push_back(std::floor(100.0 * heavy(rng)));
      s.tokens_per_expert.push_back(layer);
    }
    s.tokens_per_expert.insert(s.tokens_per_expert.begin(), std::vector<double>{});  // dense
    auto r = balance_experts(s, {.n_expert_workers = n_workers, .slots_per_worker = slots});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    expect_valid(*r, n_experts);
    EXPECT_LE(r->after.max, r->before.max);
    // The plan file round trip gives the same placement and the same prediction.
    auto back = ExpertPlacement::from_json(r->placement.to_json(), n_experts);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    for (int64_t w = 0; w < n_workers; ++w) {
      EXPECT_EQ(back->experts_of(w), r->placement.experts_of(w));
    }
    EXPECT_EQ(predict_worker_loads(*back, s).tokens, r->after.tokens);
  }
}

TEST(ExpertBalanceTest, LoadsSumOverLayersAndReportEachLayersMax) {
  ExpertLoadStats s;
  s.n_experts = 4;
  s.tokens_per_expert = {{10, 0, 0, 0}, {}, {0, 0, 0, 10}};
  auto contiguous = ExpertPlacement::contiguous(4, 2);
  ASSERT_TRUE(contiguous.is_ok());
  const WorkerLoads l = predict_worker_loads(*contiguous, s);
  EXPECT_EQ(l.tokens, (std::vector<double>{10, 10}));
  EXPECT_DOUBLE_EQ(l.max, 10.0);
  EXPECT_DOUBLE_EQ(l.imbalance, 1.0);
  EXPECT_DOUBLE_EQ(l.layer_max_sum, 20.0);  // each layer waits for a worker with 10
  // A replicated expert splits its tokens evenly.
  auto replicated = ExpertPlacement::from_worker_lists(4, {{0, 1}, {0, 2, 3}});
  ASSERT_TRUE(replicated.is_ok());
  EXPECT_EQ(predict_worker_loads(*replicated, s).tokens, (std::vector<double>{5, 15}));
  EXPECT_EQ(s.total_per_expert(), (std::vector<double>{10, 0, 0, 10}));
}

TEST(ExpertBalanceTest, ReportJsonAndShares) {
  auto r = balance_experts(one_layer(zipf(8)), {.n_expert_workers = 2});
  ASSERT_TRUE(r.is_ok());
  const nlohmann::json j = balance_report_json(*r);
  EXPECT_EQ(j["n_experts"], 8);
  EXPECT_EQ(j["n_expert_workers"], 2);
  EXPECT_EQ(j["placement"], r->placement.to_json());
  EXPECT_EQ(j["before"]["worker_tokens"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["after"]["max"].get<double>(), r->after.max);
  EXPECT_GT(j["max_reduction"].get<double>(), 0.0);
  const std::vector<double> shares = load_shares(r->after);
  EXPECT_NEAR(std::accumulate(shares.begin(), shares.end(), 0.0), 1.0, 1e-12);
  EXPECT_EQ(load_shares(WorkerLoads{.tokens = {0, 0}}), (std::vector<double>{0.5, 0.5}));
}

// The balancer's prediction, fed to the simulator: the balanced placement is a faster step.
TEST(ExpertBalanceTest, BalancedPlacementSimulatesFaster) {
  auto r = balance_experts(one_layer(zipf(32)), {.n_expert_workers = 8});
  ASSERT_TRUE(r.is_ok());
  SimConfig c;
  c.n_layers = 24;
  c.n_micro_batches = 4;
  c.n_attention_workers = 8;
  c.n_expert_workers = 8;
  c.attention_ms = 1.0;
  c.tokens_per_micro_batch = 32;
  c.top_k = 4;
  c.expert_cost = {1.0 / 256.0, 0.2};  // uniform share: 128 pairs → T_e = 0.7
  c.transfer_ms = 0.2;
  c.expert_load_shares = load_shares(r->before);
  auto before = simulate_pipeline(c);
  c.expert_load_shares = load_shares(r->after);
  auto after = simulate_pipeline(c);
  ASSERT_TRUE(before.is_ok() && after.is_ok());
  EXPECT_LT(after->step_ms, 0.8 * before->step_ms);
}

TEST(ExpertBalanceTest, ParsesBenchOutput) {
  const nlohmann::json load = {
      {"window_steps", 3},
      {"n_experts", 4},
      {"tokens_per_expert", {nlohmann::json::array(), {1, 2, 3, 4}, {4, 3, 2, 1}}}};
  auto inner = parse_expert_load(load);
  ASSERT_TRUE(inner.is_ok()) << inner.status().to_string();
  EXPECT_EQ(inner->window_steps, 3);
  EXPECT_EQ(inner->n_experts, 4);
  ASSERT_EQ(inner->tokens_per_expert.size(), 3u);
  EXPECT_TRUE(inner->tokens_per_expert[0].empty());
  EXPECT_EQ(inner->total_per_expert(), (std::vector<double>{5, 5, 5, 5}));
  // A whole `msinfer bench --json` result, from a file.
  const nlohmann::json bench = {
      {"model", "m"}, {"decode", {{"timed_steps", 5}}}, {"expert_load", load}};
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / "planner_expert_balance_bench.json";
  std::ofstream(path) << bench.dump(2);
  auto whole = read_expert_load_file(path);
  ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
  EXPECT_EQ(whole->tokens_per_expert, inner->tokens_per_expert);
  std::filesystem::remove(path);
}

TEST(ExpertBalanceTest, BadInputIsAnError) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {nlohmann::json::array(), "expected a JSON object"},
      {{{"n_experts", 4}}, "tokens_per_expert"},
      {{{"tokens_per_expert", {{1, 2}}}}, "\"n_experts\" must be an integer"},
      {{{"n_experts", 0}, {"tokens_per_expert", {{1}}}}, "\"n_experts\" must be an integer"},
      {{{"n_experts", 2}, {"window_steps", -1}, {"tokens_per_expert", {{1, 2}}}}, "window_steps"},
      {{{"n_experts", 2}, {"tokens_per_expert", {1, 2}}}, "tokens_per_expert[0] must be an array"},
      {{{"n_experts", 3}, {"tokens_per_expert", {{1, 2}}}}, "array of 3 counts"},
      {{{"n_experts", 2}, {"tokens_per_expert", {{1, -2}}}}, "tokens_per_expert[0][1] is -2"},
      {{{"n_experts", 2}, {"tokens_per_expert", {{1, "x"}}}}, "tokens_per_expert[0][1]"},
      {{{"n_experts", 2}, {"tokens_per_expert", {nlohmann::json::array()}}}, "no layer"},
      {{{"expert_load", 5}}, "expected"},
  };
  for (const auto& [j, want] : cases) {
    auto r = parse_expert_load(j);
    ASSERT_FALSE(r.is_ok()) << j.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << j.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(want)) << j.dump();
  }
  const std::filesystem::path dir = ::testing::TempDir();
  auto missing = read_expert_load_file(dir / "planner_expert_balance_missing.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  const std::filesystem::path garbage = dir / "planner_expert_balance_garbage.json";
  std::ofstream(garbage) << "{\"n_experts\": 4,";
  auto bad = read_expert_load_file(garbage);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("not valid JSON"));
  std::filesystem::remove(garbage);
}

TEST(ExpertBalanceTest, BadOptionsAreErrors) {
  const ExpertLoadStats s = one_layer(zipf(8));
  auto none = balance_experts(s, {.n_expert_workers = 0});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  auto too_many = balance_experts(s, {.n_expert_workers = 9});
  EXPECT_THAT(too_many.status().message(), HasSubstr("8 experts on 9 expert workers"));
  auto small = balance_experts(s, {.n_expert_workers = 4, .slots_per_worker = 1});
  EXPECT_THAT(small.status().message(), HasSubstr("need >= 2"));
  ExpertLoadStats ragged = s;
  ragged.tokens_per_expert.push_back({1.0, 2.0});
  auto r = balance_experts(ragged, {.n_expert_workers = 2});
  EXPECT_THAT(r.status().message(), HasSubstr("layer 1 has 2 counts for 8 experts"));
}

}  // namespace
}  // namespace msi

// Disaggregated deployments in one process: for every fixture and (M attention workers,
// N expert workers, m micro-batches), the outputs equal the single-worker run — the same tokens
// and logits within 1e-5 — with the batch spread over the attention workers and the experts over
// the expert workers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "engine/engine.h"
#include "model/config.h"

namespace msi {
namespace {

struct Deployment {
  int m_attention, n_expert, micro_batches;
};

std::vector<GenerateRequest> fixture_requests(const std::string& dir) {
  auto ref = read_json_file(dir + "/reference.json");
  EXPECT_TRUE(ref.is_ok());
  std::vector<GenerateRequest> requests;
  for (const auto& c : (*ref)["cases"]) {
    GenerateRequest r;
    r.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    r.sampling.max_tokens = 10;
    r.return_logits = true;
    requests.push_back(std::move(r));
  }
  return requests;
}

Result<std::vector<GenerateResult>> run(const std::string& dir, const Deployment& d,
                                        const std::vector<GenerateRequest>& requests,
                                        std::vector<std::string> expert_devices = {}) {
  EngineOptions opt;
  opt.expert_devices = std::move(expert_devices);
  opt.n_attention_workers = d.m_attention;
  opt.n_expert_workers = d.n_expert;
  opt.n_micro_batches = d.micro_batches;
  opt.kv_n_blocks = 64;
  opt.max_model_len = 512;
  opt.peer_timeout = std::chrono::milliseconds(20000);
  MSI_ASSIGN_OR_RETURN(auto engine, Engine::create(dir, opt));
  auto results = engine->generate(requests);
  EXPECT_EQ(engine->kv_blocks_in_use(), 0);
  EXPECT_TRUE(engine->shutdown().is_ok());
  return results;
}

class DeploymentTest : public ::testing::TestWithParam<std::tuple<std::string, Deployment>> {};

TEST_P(DeploymentTest, EqualsSingleWorker) {
  const auto& [fixture, d] = GetParam();
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + fixture;
  const auto requests = fixture_requests(dir);
  auto single = run(dir, {1, 1, 1}, requests);
  auto split = run(dir, d, requests);
  ASSERT_TRUE(single.is_ok()) << single.status().to_string();
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateResult& a = (*single)[i];
    const GenerateResult& b = (*split)[i];
    EXPECT_EQ(a.output_ids, b.output_ids) << "request " << i;
    EXPECT_EQ(a.finish_reason, b.finish_reason);
    ASSERT_EQ(a.logits.size(), b.logits.size());
    double max_abs = 0;
    for (size_t j = 0; j < a.logits.size(); ++j) {
      for (size_t v = 0; v < a.logits[j].size(); ++v) {
        max_abs = std::max<double>(max_abs, std::fabs(a.logits[j][v] - b.logits[j][v]));
      }
    }
    EXPECT_LE(max_abs, 1e-5) << "request " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Deployments, DeploymentTest,
    ::testing::Combine(::testing::Values("tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"),
                       ::testing::Values(Deployment{1, 1, 1}, Deployment{1, 1, 2}, Deployment{2, 3, 3},
                                         Deployment{3, 2, 4}, Deployment{1, 4, 2},
                                         Deployment{1, 0, 1}, Deployment{2, 0, 2})),
    [](const auto& info) {
      std::string name = std::get<0>(info.param);
      for (char& c : name) c = c == '-' ? '_' : c;
      const Deployment& d = std::get<1>(info.param);
      return name + "_M" + std::to_string(d.m_attention) + "_N" + std::to_string(d.n_expert) + "_m" +
             std::to_string(d.micro_batches);
    });

// The peer transport (tokens read in place on the attention worker's device, partial sums on the
// expert worker's), here with CPU devices: the same tokens and logits as the single worker.
TEST(Deployment, PeerTransportEqualsSingleWorker) {
  for (const std::string fixture : {"tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"}) {
    const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + fixture;
    const auto requests = fixture_requests(dir);
    auto single = run(dir, {1, 1, 1}, requests);
    ASSERT_TRUE(single.is_ok()) << single.status().to_string();
    for (const auto& [d, devices] : std::vector<std::pair<Deployment, std::vector<std::string>>>{
             {{1, 1, 1}, {"cpu"}}, {{1, 2, 2}, {"cpu", "cpu"}}, {{2, 3, 3}, {"cpu", "cpu", "cpu"}}}) {
      auto peer = run(dir, d, requests, devices);
      ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
      for (size_t i = 0; i < requests.size(); ++i) {
        EXPECT_EQ((*single)[i].output_ids, (*peer)[i].output_ids) << fixture << " request " << i;
        double max_abs = 0;
        for (size_t j = 0; j < (*single)[i].logits.size(); ++j) {
          for (size_t v = 0; v < (*single)[i].logits[j].size(); ++v) {
            max_abs = std::max<double>(max_abs, std::fabs((*single)[i].logits[j][v] - (*peer)[i].logits[j][v]));
          }
        }
        EXPECT_LE(max_abs, 1e-5) << fixture << " request " << i;
      }
    }
  }
}

TEST(Deployment, MoreAttentionWorkersThanRequestsStillStops) {
  // Workers without requests idle in lockstep until everyone is done.
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/tiny-mixtral";
  auto requests = fixture_requests(dir);
  requests.resize(1);
  auto res = run(dir, {3, 2, 2}, requests);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  EXPECT_EQ((*res)[0].output_ids.size(), 10u);
  auto none = run(dir, {2, 2, 2}, {});
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
}

TEST(Deployment, AssignRequestsBalancesPromptTokens) {
  std::vector<GenerateRequest> r(5);
  const int lens[] = {10, 1, 1, 5, 3};
  for (int i = 0; i < 5; ++i) r[static_cast<size_t>(i)].prompt.assign(static_cast<size_t>(lens[i]), 1);
  EXPECT_EQ(assign_requests(r, 2), (std::vector<int>{0, 1, 1, 1, 1}));  // loads 10 vs 1+1+5+3
  EXPECT_EQ(assign_requests(r, 1), (std::vector<int>{0, 0, 0, 0, 0}));
}

TEST(Deployment, BadOptionsAreErrors) {
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/tiny-mixtral";
  EngineOptions opt;
  opt.kv_n_blocks = 8;
  opt.n_attention_workers = 0;
  EXPECT_EQ(Engine::create(dir, opt).status().code(), StatusCode::kInvalidArgument);
  opt.n_attention_workers = 1;
  opt.n_micro_batches = 9;
  EXPECT_EQ(Engine::create(dir, opt).status().code(), StatusCode::kInvalidArgument);
  opt.n_micro_batches = 2;
  opt.n_expert_workers = 9;  // 8 experts
  EXPECT_EQ(Engine::create(dir, opt).status().code(), StatusCode::kInvalidArgument);
  opt.n_expert_workers = 2;
  opt.expert_devices = {"cpu"};  // one device for two workers
  EXPECT_EQ(Engine::create(dir, opt).status().code(), StatusCode::kInvalidArgument);
  opt.n_expert_workers = 1;
  opt.transport = "shm";  // the peer transport runs threads
  EXPECT_EQ(Engine::create(dir, opt).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msi

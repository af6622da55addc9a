// CudaBackend::count_experts against the CPU oracle (backend/cpu/expert_count.cc) on the same ids:
// counts are integers, so they must be equal exactly (no tolerance: a tally has no rounding).
// Cases: random ids with out-of-range ones, several (n, top_k, n_experts) up to the kernel's
// limit, n_valid absent / below n / zero / negative / above n, an empty batch, accumulation into
// non-zero counts, one hot expert taking every pair (shared-atomic contention), and a recorded
// graph replayed with a new n_valid (the decode-graph use). The counts sit between guard regions
// that must come back untouched. Then the engine end to end on the GPU: with decode steps replayed
// as CUDA graphs padded to a bucket (3 sequences run in a graph of 4), eagerly, and on the peer
// transport (experts on a second GPU, when there is one), every MoE layer's tallies sum to
// n_experts_per_tok × the tokens that went through it — padding rows are not counted.
// Skips (GTEST_SKIP) when there is no CUDA device.
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cuda/expert_count.cuh"
#include "backend/registry.h"
#include "engine/engine.h"

namespace msi {
namespace {

constexpr int64_t kGuard = 64;  // i32s of guard on each side of the counts
constexpr int32_t kGuardValue = -123456789;
constexpr int32_t kNoValid = INT32_MIN;  // run without an n_valid tensor

class ExpertCountGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_backend("cuda:0");
    if (!gpu.is_ok()) GTEST_SKIP() << "no CUDA device: " << gpu.status().to_string();
    gpu_ = std::move(gpu).value();
    auto cpu = make_backend("cpu");
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    cpu_ = std::move(cpu).value();
  }

  std::vector<int32_t> random_ids(int64_t n, int64_t top_k, int64_t n_experts, bool out_of_range) {
    std::uniform_int_distribution<int32_t> in(0, static_cast<int32_t>(n_experts - 1));
    std::uniform_int_distribution<int> pick(0, 19);
    std::vector<int32_t> ids(static_cast<size_t>(n * top_k));
    for (int32_t& e : ids) {
      const int k = pick(rng_);
      e = !out_of_range || k > 1 ? in(rng_)
          : k == 0               ? -1 - in(rng_)
                                 : static_cast<int32_t>(n_experts) + in(rng_);
    }
    return ids;
  }

  std::vector<int32_t> cpu_count(const std::vector<int32_t>& ids, int64_t top_k, int32_t n_valid,
                                 std::vector<int32_t> counts) {
    const int64_t n = static_cast<int64_t>(ids.size()) / top_k;
    int32_t nv = n_valid;
    cpu_->count_experts(
        Tensor::view(const_cast<int32_t*>(ids.data()), DType::kI32, {n, top_k}),
        n_valid == kNoValid ? Tensor{} : Tensor::view(&nv, DType::kI32, {1}),
        Tensor::view(counts.data(), DType::kI32, {static_cast<int64_t>(counts.size())}));
    return counts;
  }

  // Device ids, n_valid and counts (between guards) for one case.
  struct Device {
    OwnedTensor ids, n_valid, counts_buf;
    Tensor counts;
  };
  Device upload(const std::vector<int32_t>& ids, int64_t top_k, int32_t n_valid,
                const std::vector<int32_t>& counts) {
    const int64_t n = static_cast<int64_t>(ids.size()) / top_k,
                  n_experts = static_cast<int64_t>(counts.size());
    Device d;
    d.ids = gpu_->alloc(DType::kI32, {std::max<int64_t>(n, 1), top_k});
    d.ids.tensor = d.ids.tensor.slice_rows(0, n);
    if (!ids.empty()) gpu_->copy_from_host(d.ids.tensor, ids.data(), ids.size() * sizeof(int32_t));
    if (n_valid != kNoValid) {
      d.n_valid = gpu_->alloc(DType::kI32, {1});
      gpu_->copy_from_host(d.n_valid.tensor, &n_valid, sizeof(n_valid));
    }
    std::vector<int32_t> host(static_cast<size_t>(n_experts + 2 * kGuard), kGuardValue);
    std::copy(counts.begin(), counts.end(), host.begin() + kGuard);
    d.counts_buf = gpu_->alloc(DType::kI32, {n_experts + 2 * kGuard});
    gpu_->copy_from_host(d.counts_buf.tensor, host.data(), host.size() * sizeof(int32_t));
    d.counts = d.counts_buf.tensor.slice_rows(kGuard, n_experts);
    return d;
  }

  // The counts, after checking the guards.
  std::vector<int32_t> download(const Device& d, const std::string& what) {
    std::vector<int32_t> host(static_cast<size_t>(d.counts_buf.tensor.numel()));
    gpu_->copy_to_host(host.data(), d.counts_buf.tensor, host.size() * sizeof(int32_t));
    for (int64_t i = 0; i < kGuard; ++i) {
      EXPECT_EQ(host[static_cast<size_t>(i)], kGuardValue)
          << what << ": guard before the counts overwritten";
      EXPECT_EQ(host[host.size() - 1 - static_cast<size_t>(i)], kGuardValue)
          << what << ": guard after overwritten";
    }
    return {host.begin() + kGuard, host.end() - kGuard};
  }

  void expect_same(const std::vector<int32_t>& ids, int64_t top_k, int32_t n_valid,
                   const std::vector<int32_t>& start, const std::string& what) {
    Device d = upload(ids, top_k, n_valid, start);
    gpu_->count_experts(d.ids.tensor, d.n_valid.tensor, d.counts);
    EXPECT_EQ(download(d, what), cpu_count(ids, top_k, n_valid, start)) << what;
  }

  std::unique_ptr<Backend> gpu_, cpu_;
  std::mt19937 rng_{20250};
};

TEST_F(ExpertCountGpuTest, RandomIdsMatchTheOracle) {
  struct Shape {
    int64_t n, top_k, n_experts;
  };
  for (const Shape s : {Shape{1, 1, 1}, Shape{7, 2, 8}, Shape{256, 8, 128}, Shape{1000, 6, 60},
                        Shape{8192, 8, 256}, Shape{333, 4, cuda::kCountMaxExperts}}) {
    const std::vector<int32_t> ids = random_ids(s.n, s.top_k, s.n_experts, true);
    const auto n = static_cast<int32_t>(s.n);
    for (int32_t n_valid : {kNoValid, n, n / 2, 1, 0, -5, n + 17}) {
      const std::string what = "n=" + std::to_string(s.n) + " top_k=" + std::to_string(s.top_k) +
                               " experts=" + std::to_string(s.n_experts) +
                               " n_valid=" + std::to_string(n_valid);
      expect_same(ids, s.top_k, n_valid, std::vector<int32_t>(static_cast<size_t>(s.n_experts), 0),
                  what);
    }
  }
}

TEST_F(ExpertCountGpuTest, AccumulatesIntoExistingCounts) {
  const std::vector<int32_t> ids = random_ids(500, 8, 64, true);
  std::vector<int32_t> start(64);
  for (size_t e = 0; e < start.size(); ++e) start[e] = static_cast<int32_t>(1000 * e + 3);
  expect_same(ids, 8, kNoValid, start, "accumulate");
  expect_same(ids, 8, 123, start, "accumulate, n_valid 123");
}

TEST_F(ExpertCountGpuTest, EmptyBatchAddsNothing) {
  const std::vector<int32_t> start = {4, 5, 6, 7};
  expect_same({}, 2, kNoValid, start, "empty");
  expect_same({}, 2, 3, start, "empty, n_valid 3");
}

TEST_F(ExpertCountGpuTest, OneHotExpertTakesEveryPair) {
  const std::vector<int32_t> ids(static_cast<size_t>(8192 * 8), 5);
  expect_same(ids, 8, kNoValid, std::vector<int32_t>(16, 0), "hot expert");
}

TEST_F(ExpertCountGpuTest, GraphReplaysCountOnlyTheValidRows) {
  // Recorded once for a padded batch of 16 rows, replayed with 16, 3 and 0 valid rows.
  const int64_t n = 16, top_k = 4, n_experts = 32;
  const std::vector<int32_t> ids = random_ids(n, top_k, n_experts, false);
  Device d = upload(ids, top_k, static_cast<int32_t>(n), std::vector<int32_t>(n_experts, 0));
  std::unique_ptr<DeviceGraph> graph =
      gpu_->capture([&] { gpu_->count_experts(d.ids.tensor, d.n_valid.tensor, d.counts); });
  ASSERT_NE(graph, nullptr);
  std::vector<int32_t> want(n_experts, 0);
  for (int32_t n_valid : {16, 3, 0, 9}) {
    gpu_->copy_from_host(d.n_valid.tensor, &n_valid, sizeof(n_valid));
    graph->launch();
    want = cpu_count(ids, top_k, n_valid, want);
    EXPECT_EQ(download(d, "graph"), want) << "after a replay with n_valid " << n_valid;
  }
}

struct EngineCase {
  std::string name;
  bool eager;
  bool peer;  // experts on cuda:1 (peer transport)
};

class ExpertLoadEngineGpuTest : public ::testing::TestWithParam<EngineCase> {};

TEST_P(ExpertLoadEngineGpuTest, CountsTopKTimesTheTokensOfEveryMoeLayer) {
  const EngineCase& p = GetParam();
  if (!make_backend("cuda:0").is_ok()) GTEST_SKIP() << "no CUDA device";
  if (p.peer && !make_backend("cuda:1").is_ok()) GTEST_SKIP() << "needs two CUDA devices";
  EngineOptions o;
  o.device = "cuda:0";
  o.n_expert_workers = 0;
  if (p.peer) {
    o.attention_devices = {"cuda:0"};
    o.expert_devices = {"cuda:1"};
    o.n_expert_workers = 1;
  }
  o.enforce_eager = p.eager;
  o.kv_n_blocks = 64;
  o.max_model_len = 256;
  auto engine = Engine::create(std::string(MSI_TEST_DATA_DIR) + "/tiny-qwen2-moe", o);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  // Three sequences of different lengths: decode batches of 3 (a graph of 4), 2 and 1.
  std::vector<GenerateRequest> requests(3);
  int64_t n_tokens = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    for (size_t t = 0; t < 4 + 3 * i; ++t) {
      requests[i].prompt.push_back(static_cast<int32_t>(17 * t + i + 1));
    }
    requests[i].sampling.max_tokens = 6 + 4 * static_cast<int64_t>(i);
    requests[i].sampling.ignore_eos = true;
    n_tokens +=
        static_cast<int64_t>(requests[i].prompt.size()) + requests[i].sampling.max_tokens - 1;
  }
  auto results = (*engine)->generate(requests);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  ASSERT_TRUE((*engine)->shutdown().is_ok());
  const nlohmann::json load = (*engine)->expert_load_json();
  const ModelConfig& c = (*engine)->config();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto row = load["tokens_per_expert"][static_cast<size_t>(l)].get<std::vector<int64_t>>();
    if (!c.is_moe_layer(l)) continue;
    ASSERT_EQ(row.size(), static_cast<size_t>(c.n_experts));
    EXPECT_EQ(std::accumulate(row.begin(), row.end(), int64_t{0}), c.n_experts_per_tok * n_tokens)
        << "layer " << l;
  }
}

INSTANTIATE_TEST_SUITE_P(Deployments, ExpertLoadEngineGpuTest,
                         ::testing::Values(EngineCase{"graphs", false, false},
                                           EngineCase{"eager", true, false},
                                           EngineCase{"peer_graphs", false, true}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace msi

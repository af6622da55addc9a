// The engine on one GPU (CUDA backend, experts colocated on the device) against transformers'
// references of every fixture, and batching invariance. Skips without a CUDA device.
//
// Bounds: bf16 weights and activations against float32 references. The issue asks for relative L2
// 2e-2; on these tiny random models transformers itself, run in bf16 on the GPU over the same
// cases (tools/bf16_gap.py, H100, 2026-11-22), is off its own float32 reference by a median of
// 1.1e-2 / 6.3e-3 / 7.2e-3 and a maximum of 0.456 / 0.070 / 0.076 (tiny-mixtral / qwen3 / qwen2:
// a few steps have small logit norms). So the median step is held to 2e-2 and every step to 1.25×
// transformers' own bf16 maximum. Greedy tokens must equal the reference's, except from a step
// where the reference's top-2 margin is below kNearTie (there bf16 rounding may pick the other
// token and the continuations part).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "engine/engine.h"
#include "model/dummy.h"

namespace msi {
namespace {

constexpr double kMedianRelL2 = 2e-2;
constexpr float kNearTie = 5e-2f;

// 1.25 × transformers-bf16's maximum relative L2 on the fixture (see above).
double max_rel_l2(const std::string& fixture) {
  if (fixture == "tiny-mixtral") return 1.25 * 0.456;
  if (fixture == "tiny-qwen3-moe") return 1.25 * 0.0702;
  return 1.25 * 0.076;  // tiny-qwen2-moe
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct RefCase {
  std::vector<int32_t> prompt_ids, output_ids;
  std::vector<std::vector<float>> logits;
};

std::string data(const std::string& fixture) { return std::string(MSI_TEST_DATA_DIR) + "/" + fixture; }

std::vector<RefCase> load_reference(const std::string& dir) {
  const std::string recomputed = dir + "/reference-recomputed.json";
  auto j = read_json_file(std::filesystem::exists(recomputed) ? recomputed : dir + "/reference.json");
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  std::vector<RefCase> cases;
  for (const auto& c : (*j)["cases"]) {
    cases.push_back({c["prompt_ids"].get<std::vector<int32_t>>(), c["output_ids"].get<std::vector<int32_t>>(),
                     c["logits"].get<std::vector<std::vector<float>>>()});
  }
  return cases;
}

float top2_margin(const std::vector<float>& v) {
  float a = -INFINITY, b = -INFINITY;
  for (float x : v) {
    if (x > a) {
      b = a;
      a = x;
    } else if (x > b) {
      b = x;
    }
  }
  return a - b;
}

// One request per reference case: its prompt, `max_tokens` (0: the reference's output length).
std::vector<GenerateRequest> requests_of(const std::vector<RefCase>& cases, int64_t max_tokens, bool return_logits,
                                         bool ignore_eos = false) {
  std::vector<GenerateRequest> requests;
  for (const auto& c : cases) {
    GenerateRequest r;
    r.prompt = c.prompt_ids;
    r.sampling.max_tokens = max_tokens > 0 ? max_tokens : static_cast<int64_t>(c.output_ids.size());
    r.sampling.ignore_eos = ignore_eos;
    r.return_logits = return_logits;
    requests.push_back(std::move(r));
  }
  return requests;
}

bool have_gpu() { return make_backend("cuda:0").is_ok(); }

std::unique_ptr<Engine> gpu_engine(const std::string& dir, int64_t kv_blocks, int64_t max_seqs = 256,
                                   bool eager = false) {
  EngineOptions opt;
  opt.enforce_eager = eager;
  opt.device = "cuda:0";
  opt.n_expert_workers = 0;
  opt.kv_n_blocks = kv_blocks;
  opt.max_model_len = 1024;
  opt.max_seqs = max_seqs;
  opt.max_batched_tokens = 2048;
  auto e = Engine::create(dir, opt);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

class GpuFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(GpuFixtureTest, MatchesTransformersInBf16) {
  const std::string dir = data(GetParam());
  const auto cases = load_reference(dir);
  auto engine = gpu_engine(dir, 256);
  ASSERT_NE(engine, nullptr);
  const std::vector<GenerateRequest> batch = requests_of(cases, 0, true);
  auto res = engine->generate(batch);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  double worst = 0;
  std::vector<double> rels;
  int near_ties = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const RefCase& ref = cases[i];
    const GenerateResult& got = (*res)[i];
    for (size_t j = 0; j < ref.output_ids.size() && j < got.output_ids.size(); ++j) {
      double diff2 = 0, ref2 = 0;
      for (size_t v = 0; v < ref.logits[j].size(); ++v) {
        const double d = static_cast<double>(got.logits[j][v]) - ref.logits[j][v];
        diff2 += d * d;
        ref2 += static_cast<double>(ref.logits[j][v]) * ref.logits[j][v];
      }
      const double rel = std::sqrt(diff2 / ref2);
      worst = std::max(worst, rel);
      rels.push_back(rel);
      EXPECT_LE(rel, max_rel_l2(GetParam())) << GetParam() << " case " << i << " step " << j;
      if (got.output_ids[j] != ref.output_ids[j]) {
        EXPECT_LT(top2_margin(ref.logits[j]), kNearTie)
            << GetParam() << " case " << i << ": token differs at step " << j << " without a near-tie";
        ++near_ties;
        break;
      }
    }
  }
  std::printf("%s: vs reference: relative L2 median %.3g, max %.3g over %zu steps, %d near-tie divergences\n",
              GetParam().c_str(), median(rels), worst, rels.size(), near_ties);
  EXPECT_LE(median(rels), kMedianRelL2);
  EXPECT_EQ(engine->kv_blocks_in_use(), 0);
  EXPECT_TRUE(engine->shutdown().is_ok());
}

// The same requests on the CPU engine (float32, the oracle) and the GPU engine (bf16): the distance
// between them is bf16 rounding alone, with no reference noise.
TEST_P(GpuFixtureTest, CloseToTheCpuEngine) {
  const std::string dir = data(GetParam());
  const auto cases = load_reference(dir);
  const std::vector<GenerateRequest> batch = requests_of(cases, 0, true);
  EngineOptions cpu_opt;
  cpu_opt.kv_n_blocks = 256;
  cpu_opt.max_model_len = 1024;
  auto cpu = Engine::create(dir, cpu_opt);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  auto gpu = gpu_engine(dir, 256);
  ASSERT_NE(gpu, nullptr);
  auto a = (*cpu)->generate(batch);
  auto b = gpu->generate(batch);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  double worst = 0;
  std::vector<double> rels;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& x = (*a)[i];
    const auto& y = (*b)[i];
    for (size_t j = 0; j < x.output_ids.size() && j < y.output_ids.size(); ++j) {
      double d2 = 0, r2 = 0;
      for (size_t v = 0; v < x.logits[j].size(); ++v) {
        const double d = static_cast<double>(y.logits[j][v]) - x.logits[j][v];
        d2 += d * d;
        r2 += static_cast<double>(x.logits[j][v]) * x.logits[j][v];
      }
      worst = std::max(worst, std::sqrt(d2 / r2));
      rels.push_back(std::sqrt(d2 / r2));
      if (x.output_ids[j] != y.output_ids[j]) break;
    }
  }
  std::printf("%s: GPU vs CPU engine: relative L2 median %.3g, max %.3g over %zu steps\n", GetParam().c_str(),
              median(rels), worst, rels.size());
  EXPECT_LE(median(rels), kMedianRelL2);
  EXPECT_LE(worst, max_rel_l2(GetParam()));
  (*cpu)->shutdown();
  gpu->shutdown();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GpuFixtureTest,
                         ::testing::Values("tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

// 32 concurrent requests give the same greedy tokens as each one alone.
TEST(GpuEngine, ThirtyTwoConcurrentEqualEachAlone) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::string dir = data("tiny-qwen3-moe");
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, 2047);
  std::uniform_int_distribution<int> len(3, 60);
  std::vector<GenerateRequest> requests(32);
  for (auto& r : requests) {
    r.prompt.resize(static_cast<size_t>(len(rng)));
    for (int32_t& t : r.prompt) t = tok(rng);
    r.sampling.max_tokens = 24;
    r.sampling.ignore_eos = true;
  }
  auto engine = gpu_engine(dir, 512);
  ASSERT_NE(engine, nullptr);
  auto together = engine->generate(requests);
  ASSERT_TRUE(together.is_ok()) << together.status().to_string();
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = engine->generate({requests[i]});
    ASSERT_TRUE(alone.is_ok()) << alone.status().to_string();
    EXPECT_EQ((*alone)[0].output_ids, (*together)[i].output_ids) << "request " << i;
  }
  EXPECT_TRUE(engine->shutdown().is_ok());
}

// Decode steps replayed as CUDA graphs (padded to their bucket) give the tokens of op-by-op steps.
TEST(GpuEngine, GraphsEqualEager) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (const std::string fixture : {"tiny-mixtral", "tiny-qwen2-moe"}) {
    const auto cases = load_reference(data(fixture));
    const std::vector<GenerateRequest> requests = requests_of(cases, 16, false, true);
    auto graphs = gpu_engine(data(fixture), 256, 256, false);
    auto eager = gpu_engine(data(fixture), 256, 256, true);
    ASSERT_NE(graphs, nullptr);
    ASSERT_NE(eager, nullptr);
    auto a = graphs->generate(requests);
    auto b = eager->generate(requests);
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ((*a)[i].output_ids, (*b)[i].output_ids) << fixture << " " << i;
  }
}

// Disaggregated on two GPUs (attention on cuda:0; experts on cuda:1, or split over both) gives the
// single GPU's tokens: the peer transport reads tokens and partial sums in place over NVLink. With
// every expert on cuda:1 the arithmetic is the single GPU's, so tokens and logits are equal. With
// the experts split over two workers each adds its partial sum into the bf16 MoE output in turn
// (two roundings instead of one), so there tokens may part only at a near-tie (the single GPU's
// top-2 margin below kNearTie) and logits stay within the fixture's bf16 bound up to there (one
// more bf16 rounding per layer moves these tiny models' logits about as much as bf16 itself).
TEST(GpuEngine, DisaggregatedOnTwoGpusEqualsOneGpu) {
  if (!make_backend("cuda:1").is_ok()) GTEST_SKIP() << "needs two CUDA devices";
  for (const std::string fixture : {"tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"}) {
    const auto cases = load_reference(data(fixture));
    const std::vector<GenerateRequest> requests = requests_of(cases, 12, true);
    auto one = gpu_engine(data(fixture), 256);
    ASSERT_NE(one, nullptr);
    auto want = one->generate(requests);
    ASSERT_TRUE(want.is_ok()) << want.status().to_string();
    one->shutdown();
    struct Split {
      std::vector<std::string> experts;
      int micro_batches;
    };
    for (const Split& split : {Split{{"cuda:1"}, 1}, Split{{"cuda:1"}, 2}, Split{{"cuda:0", "cuda:1"}, 2}}) {
      EngineOptions opt;
      opt.device = "cuda:0";
      opt.attention_devices = {"cuda:0"};
      opt.expert_devices = split.experts;
      opt.n_expert_workers = static_cast<int>(split.experts.size());
      opt.n_micro_batches = split.micro_batches;
      opt.kv_n_blocks = 256;
      opt.max_model_len = 1024;
      opt.max_batched_tokens = 2048;
      auto e = Engine::create(data(fixture), opt);
      ASSERT_TRUE(e.is_ok()) << e.status().to_string();
      auto got = (*e)->generate(requests);
      ASSERT_TRUE(got.is_ok()) << got.status().to_string();
      const std::string what = fixture + " experts on " + std::to_string(split.experts.size()) +
                               " devices, m=" + std::to_string(split.micro_batches);
      for (size_t i = 0; i < requests.size(); ++i) {
        const GenerateResult& a = (*got)[i];
        const GenerateResult& b = (*want)[i];
        if (split.experts.size() == 1) {
          EXPECT_EQ(a.output_ids, b.output_ids) << what << " request " << i;
          EXPECT_EQ(a.logits, b.logits) << what << " request " << i;
          continue;
        }
        for (size_t j = 0; j < a.output_ids.size() && j < b.output_ids.size(); ++j) {
          double d2 = 0, r2 = 0;
          for (size_t v = 0; v < b.logits[j].size(); ++v) {
            const double d = static_cast<double>(a.logits[j][v]) - b.logits[j][v];
            d2 += d * d;
            r2 += static_cast<double>(b.logits[j][v]) * b.logits[j][v];
          }
          EXPECT_LE(std::sqrt(d2 / r2), max_rel_l2(fixture)) << what << " request " << i << " step " << j;
          if (a.output_ids[j] != b.output_ids[j]) {
            EXPECT_LT(top2_margin(b.logits[j]), kNearTie) << what << " request " << i << " step " << j;
            std::printf("%s request %zu: tokens part at step %zu, single-GPU top-2 margin %.4f\n", what.c_str(), i, j,
                        top2_margin(b.logits[j]));
            break;
          }
        }
      }
      EXPECT_TRUE((*e)->shutdown().is_ok());
    }
  }
}

// Dummy weights generated on the device equal the host generator's, bit for bit.
TEST(GpuEngine, DeviceDummyWeightsEqualHostGenerator) {
  auto gpu = make_backend("cuda:0");
  if (!gpu.is_ok()) GTEST_SKIP() << "no CUDA device";
  const GeneratedTensor g{0x1234567890abcdefull, 0.0f, 0.0625f};
  const int64_t n = 1 << 20;
  OwnedTensor t = (*gpu)->alloc(DType::kBF16, {n});
  (*gpu)->fill_dummy(t.tensor, g.stream, g.center, g.half_width);
  std::vector<uint16_t> got(static_cast<size_t>(n));
  (*gpu)->copy_to_host(got.data(), t.tensor, got.size() * sizeof(uint16_t));
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(got[static_cast<size_t>(i)], dummy_value_bf16(g, i)) << "element " << i;
  }
}

}  // namespace
}  // namespace msi

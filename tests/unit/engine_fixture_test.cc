// The engine against transformers: every case of each fixture's reference is reproduced from its
// prompt_ids. Rule: output_ids equal, except that from a step where the reference's top-2 logit
// margin is below 1e-3 on (a near-tie) the tokens may differ; up to there the logits are within
// max-abs 2e-3 and relative L2 1e-4. All cases as one batch equal each case alone.
//
// NOTE: the references shipped with shared/fixtures (tiny-mixtral, tiny-qwen3-moe reference.json)
// were not computed from the bf16 checkpoint as stored: transformers 5.17 itself, run on the
// stored checkpoint in float32 (CPU and CUDA alike), differs from them by up to 2.2e-3 relative
// L2 / 6.7e-3 max-abs, and so does an independent float64 forward. Those fixtures therefore carry
// reference-recomputed.json (tools/make_fixture.py --reference-only, transformers 5.17, CPU
// float32), held to the strict bounds; the shipped reference.json is held to the same tokens and
// to the bounds of that measured gap (kShippedMaxAbs, kShippedRelL2). See tests/data/README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace msi {
namespace {

struct Bounds {
  double max_abs;
  double rel_l2;
  float near_tie;  // a top-2 margin below this may flip the token
};
constexpr Bounds kStrict{2e-3, 1e-4, 1e-3};
// The measured transformers-vs-shipped gap (6.7e-3 max-abs, 2.2e-3 rel L2), rounded up; a margin
// can move by twice the max-abs gap.
constexpr Bounds kShipped{1e-2, 3e-3, 1.5e-2};

struct RefCase {
  std::vector<int32_t> prompt_ids, output_ids;
  std::vector<std::vector<float>> logits;
};

std::vector<RefCase> load_reference(const std::string& path) {
  auto j = read_json_file(path);
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  std::vector<RefCase> cases;
  for (const auto& c : (*j)["cases"]) {
    RefCase r;
    r.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    r.output_ids = c["output_ids"].get<std::vector<int32_t>>();
    r.logits = c["logits"].get<std::vector<std::vector<float>>>();
    cases.push_back(std::move(r));
  }
  return cases;
}

float top2_margin(const std::vector<float>& v) {
  float a = -INFINITY, b = -INFINITY;
  for (float x : v) {
    if (x > a) { b = a; a = x; } else if (x > b) { b = x; }
  }
  return a - b;
}

// Checks one generated result against the reference; returns the number of steps compared.
size_t expect_matches_reference(const RefCase& ref, const GenerateResult& got, const std::string& what,
                                Bounds bounds = kStrict) {
  size_t compared = 0;
  for (size_t j = 0; j < ref.output_ids.size(); ++j) {
    EXPECT_LT(j, got.output_ids.size()) << what;
    if (j >= got.output_ids.size()) break;
    const auto& rl = ref.logits[j];
    const auto& gl = got.logits[j];
    EXPECT_EQ(rl.size(), gl.size());
    double max_abs = 0, diff2 = 0, ref2 = 0;
    for (size_t v = 0; v < rl.size(); ++v) {
      const double d = static_cast<double>(gl[v]) - rl[v];
      max_abs = std::max(max_abs, std::fabs(d));
      diff2 += d * d;
      ref2 += static_cast<double>(rl[v]) * rl[v];
    }
    EXPECT_LE(max_abs, bounds.max_abs) << what << " step " << j;
    EXPECT_LE(std::sqrt(diff2 / ref2), bounds.rel_l2) << what << " step " << j;
    ++compared;
    if (got.output_ids[j] != ref.output_ids[j]) {
      EXPECT_LT(top2_margin(rl), bounds.near_tie) << what << ": token differs at step " << j << " (got "
                                        << got.output_ids[j] << ", reference " << ref.output_ids[j]
                                        << ") without a near-tie";
      break;  // a near-tie: the continuations may differ from here on
    }
  }
  return compared;
}

// The strict reference of a fixture: reference-recomputed.json where the shipped one is off.
std::string strict_reference(const std::string& dir) {
  const std::string recomputed = dir + "/reference-recomputed.json";
  return std::filesystem::exists(recomputed) ? recomputed : dir + "/reference.json";
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

std::unique_ptr<Engine> make_engine(const std::string& dir, int64_t kv_blocks, int64_t n_expert_workers = 1) {
  EngineOptions opt;
  opt.kv_n_blocks = kv_blocks;
  opt.max_model_len = 1024;
  opt.n_expert_workers = n_expert_workers;
  auto e = Engine::create(dir, opt);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

GenerateRequest greedy(const RefCase& c) {
  GenerateRequest r;
  r.prompt = c.prompt_ids;
  r.sampling.max_tokens = static_cast<int64_t>(c.output_ids.size());
  r.return_logits = true;
  return r;
}

TEST_P(FixtureTest, EachCaseAloneMatchesTransformers) {
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + GetParam();
  const auto cases = load_reference(strict_reference(dir));
  ASSERT_FALSE(cases.empty());
  auto engine = make_engine(dir, 64);
  ASSERT_NE(engine, nullptr);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto res = engine->generate({greedy(cases[i])});
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    EXPECT_GT(expect_matches_reference(cases[i], (*res)[0], GetParam() + " case " + std::to_string(i)), 0u);
    EXPECT_LT(secs, 1.0) << "case " << i << " took " << secs << " s";
  }
  EXPECT_EQ(engine->kv_blocks_in_use(), 0) << "KV blocks leaked";
}

TEST_P(FixtureTest, ShippedReferenceMatchesWithinTheMeasuredGap) {
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + GetParam();
  const auto cases = load_reference(dir + "/reference.json");
  std::vector<GenerateRequest> batch;
  for (const auto& c : cases) batch.push_back(greedy(c));
  auto engine = make_engine(dir, 256);
  ASSERT_NE(engine, nullptr);
  auto res = engine->generate(batch);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  for (size_t i = 0; i < cases.size(); ++i) {
    expect_matches_reference(cases[i], (*res)[i], GetParam() + " shipped case " + std::to_string(i), kShipped);
  }
}

TEST_P(FixtureTest, BatchEqualsOneAtATime) {
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + GetParam();
  const auto cases = load_reference(strict_reference(dir));
  std::vector<GenerateRequest> batch;
  for (const auto& c : cases) batch.push_back(greedy(c));
  auto engine = make_engine(dir, 256);
  ASSERT_NE(engine, nullptr);
  auto together = engine->generate(batch);
  ASSERT_TRUE(together.is_ok()) << together.status().to_string();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto alone = engine->generate({batch[i]});
    ASSERT_TRUE(alone.is_ok());
    EXPECT_EQ((*together)[i].output_ids, (*alone)[0].output_ids) << "case " << i;
    for (size_t j = 0; j < (*alone)[0].logits.size(); ++j) {
      double max_abs = 0;
      for (size_t v = 0; v < (*alone)[0].logits[j].size(); ++v) {
        max_abs = std::max<double>(max_abs, std::fabs((*together)[i].logits[j][v] - (*alone)[0].logits[j][v]));
      }
      EXPECT_LE(max_abs, 1e-4) << "case " << i << " step " << j;
    }
    expect_matches_reference(cases[i], (*together)[i], GetParam() + " batched case " + std::to_string(i));
  }
}

TEST_P(FixtureTest, ExpertsSplitOverWorkersMatch) {
  // The same role-split forward with the experts spread over 3 in-process expert workers
  // (an uneven split) gives the same outputs.
  const std::string dir = std::string(MSI_TEST_DATA_DIR) + "/" + GetParam();
  const auto cases = load_reference(strict_reference(dir));
  std::vector<GenerateRequest> batch;
  for (const auto& c : cases) batch.push_back(greedy(c));
  auto one = make_engine(dir, 256, 1);
  auto three = make_engine(dir, 256, 3);
  ASSERT_TRUE(one && three);
  auto a = one->generate(batch);
  auto b = three->generate(batch);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ((*a)[i].output_ids, (*b)[i].output_ids);
    for (size_t j = 0; j < (*a)[i].logits.size(); ++j) {
      for (size_t v = 0; v < (*a)[i].logits[j].size(); ++v) {
        ASSERT_NEAR((*a)[i].logits[j][v], (*b)[i].logits[j][v], 1e-5);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest,
                         ::testing::Values("tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace msi

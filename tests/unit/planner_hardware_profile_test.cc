// Hardware profiles: the roofline estimate against hand-computed numbers, interpolation over
// sequence length, the JSON round trip, validation errors that name the field, and the check that
// a profile belongs to the model.
#include <filesystem>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "planner/hardware_profile.h"
#include "planner/perf_model.h"
#include "test_util.h"

namespace msi::planner {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::filesystem::path kConfigs =
    std::filesystem::path(MSI_TEST_DATA_DIR).parent_path().parent_path() / "bench" / "configs";

ModelConfig config_of(const std::string& name) {
  auto c = load_model_config(kConfigs / name);
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  return *c;
}

TEST(HardwareProfileTest, ExpertRooflineMatchesHandNumbers) {
  const EstimateOptions o;
  const GpuSpec l40s = *find_gpu("L40S");
  const HardwareProfile p = estimate_profile(l40s, config_of("mixtral-8x22b"), o);
  EXPECT_EQ(p.gpu, "L40S");
  EXPECT_EQ(p.source, "roofline-estimate");
  auto e = p.expert_at(1);
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  // One Mixtral-8x22B expert layer: 3·6144·16384 bf16 weights (604 MB) at 864 GB/s × 0.8.
  const double weights = 3.0 * 6144 * 16384 * 2;
  const double t1 = weights / (0.864e12 * 0.8) * 1e3 + 0.010;  // batch 1: weight-bound
  // At the 2048-token anchor it is compute-bound: 2 FLOPs per weight per token at 362 × 0.7.
  const double t_anchor = 2.0 * 3 * 6144 * 16384 * 2048 / (362e12 * 0.7) * 1e3 + 0.010;
  EXPECT_NEAR(e->k3_ms + e->k4_ms, t1, 1e-9);
  EXPECT_NEAR(e->k3_ms * 2048 + e->k4_ms, t_anchor, 1e-9);
  // Tensor parallelism splits the weights and the FLOPs.
  auto e4 = p.expert_at(4);
  ASSERT_TRUE(e4.is_ok());
  EXPECT_NEAR(e4->k4_ms, e->k4_ms / 4, 0.02);
  EXPECT_NEAR(e4->k3_ms, e->k3_ms / 4, 1e-6);
}

TEST(HardwareProfileTest, AttentionGrowsWithContextAndShrinksWithTp) {
  const HardwareProfile p = estimate_profile(*find_gpu("H20"), config_of("mixtral-8x22b"));
  EXPECT_EQ(p.attention_tps(), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(p.expert_tps(), (std::vector<int>{1, 2, 4, 8}));
  double last_k1 = 0;
  for (double seq : {256.0, 1024.0, 4096.0, 32768.0}) {
    auto a = p.attention_at(1, seq);
    ASSERT_TRUE(a.is_ok());
    EXPECT_GT(a->k1_ms, last_k1) << "KV reads grow with the context";
    EXPECT_GT(a->k2_ms, 0);
    last_k1 = a->k1_ms;
  }
  EXPECT_LT(p.attention_at(2, 1024)->k2_ms, p.attention_at(1, 1024)->k2_ms);
  EXPECT_LT(p.attention_at(2, 1024)->k1_ms, p.attention_at(1, 1024)->k1_ms);
  // Links: the NIC always, NVLink where the GPU has it.
  EXPECT_DOUBLE_EQ(p.link.bandwidth_gbs, 50);
  EXPECT_DOUBLE_EQ(p.nvlink.bandwidth_gbs, 450);
  const HardwareProfile l = estimate_profile(*find_gpu("L40S"), config_of("mixtral-8x22b"));
  EXPECT_DOUBLE_EQ(l.nvlink.bandwidth_gbs, 0);
  EXPECT_TRUE(l.nvlink.utilization.empty());
}

TEST(HardwareProfileTest, InterpolatesOverSequenceLength) {
  HardwareProfile p;
  p.gpu = "X";
  p.attention = {{1, 1000, 0.010, 0.1}, {1, 3000, 0.030, 0.3}, {2, 1000, 0.005, 0.05}};
  auto mid = p.attention_at(1, 2000);
  ASSERT_TRUE(mid.is_ok());
  EXPECT_NEAR(mid->k1_ms, 0.020, 1e-12);
  EXPECT_NEAR(mid->k2_ms, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(mid->seq_len, 2000);
  EXPECT_NEAR(p.attention_at(1, 5000)->k1_ms, 0.050, 1e-12);  // extrapolated along the last segment
  EXPECT_NEAR(p.attention_at(1, 0)->k1_ms, 0.0, 1e-12);       // and clamped at zero
  EXPECT_DOUBLE_EQ(p.attention_at(2, 9999)->k1_ms, 0.005);    // one point: used as is
  auto none = p.attention_at(4, 1000);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("has tp 1, 2"));
  EXPECT_THAT(p.expert_at(1).status().message(), HasSubstr("no expert coefficients for tp 1"));
}

TEST(HardwareProfileTest, JsonRoundTrip) {
  HardwareProfile p = estimate_profile(*find_gpu("H20"), config_of("qwen3-30b-a3b"));
  p.memory_gib = 95.5;
  p.price = 2.0;
  const json j = hardware_profile_to_json(p);
  EXPECT_EQ(j["format"], "msinfer-hardware-profile");
  auto back = hardware_profile_from_json(j);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(hardware_profile_to_json(*back), j);
  EXPECT_EQ(back->model.model_type, "qwen3_moe");
  EXPECT_EQ(back->attention.size(), p.attention.size());
  EXPECT_DOUBLE_EQ(back->price, 2.0);

  // Through a file, too.
  test::TempDir tmp;
  const auto path = tmp.write("profile.json", j.dump(2));
  auto loaded = load_hardware_profile(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  EXPECT_EQ(hardware_profile_to_json(*loaded), j);
}

// The error for `j` after `edit`.
std::string error_after(const std::function<void(json&)>& edit) {
  json j =
      hardware_profile_to_json(estimate_profile(*find_gpu("L40S"), config_of("mixtral-8x22b")));
  edit(j);
  auto p = hardware_profile_from_json(j);
  return p.is_ok() ? "(no error)" : p.status().message();
}

TEST(HardwareProfileTest, ValidationNamesTheField) {
  EXPECT_THAT(error_after([](json& j) { j.erase("gpu"); }), HasSubstr("profile has no 'gpu'"));
  EXPECT_THAT(error_after([](json& j) { j["format"] = "msinfer-deployment-plan"; }),
              HasSubstr("'format' must be \"msinfer-hardware-profile\""));
  EXPECT_THAT(error_after([](json& j) { j["source"] = "guess"; }), HasSubstr("'source'"));
  EXPECT_THAT(error_after([](json& j) { j["attention"][2]["k1_ms"] = "fast"; }),
              HasSubstr("'attention[2].k1_ms' must be a number >= 0, got \"fast\""));
  EXPECT_THAT(error_after([](json& j) { j["expert"][0]["k4_ms"] = -1; }),
              HasSubstr("'expert[0].k4_ms' must be a number >= 0, got -1"));
  EXPECT_THAT(error_after([](json& j) { j["expert"][1]["tp"] = 0; }),
              HasSubstr("'expert[1].tp' must be an integer >= 1"));
  EXPECT_THAT(error_after([](json& j) { j["expert"][1]["tp"] = 1; }),
              HasSubstr("'expert[1].tp' must be unique"));
  EXPECT_THAT(
      error_after([](json& j) { j["attention"][1]["seq_len"] = j["attention"][0]["seq_len"]; }),
      HasSubstr("'attention[1].seq_len' must be unique per tp"));
  EXPECT_THAT(error_after([](json& j) { j["attention"] = json::array(); }),
              HasSubstr("'attention' must be a non-empty list"));
  EXPECT_THAT(error_after([](json& j) { j["link"]["utilization"][1]["utilization"] = 1.5; }),
              HasSubstr("'link.utilization[1].utilization' must be a number in (0, 1]"));
  EXPECT_THAT(error_after([](json& j) { j["link"]["utilization"][1]["bytes"] = 1; }),
              HasSubstr("'link.utilization[1].bytes' must be larger than the previous"));
  EXPECT_THAT(error_after([](json& j) { j["link"]["bandwidth_gbs"] = 0; }),
              HasSubstr("'link' must be a link with bandwidth_gbs > 0"));
  EXPECT_THAT(error_after([](json& j) { j["model"].erase("n_layers"); }),
              HasSubstr("profile has no 'model.n_layers'"));
  EXPECT_THAT(error_after([](json&) {}), HasSubstr("(no error)"));
}

TEST(HardwareProfileTest, LoadErrorsNameTheFile) {
  test::TempDir tmp;
  const auto path = tmp.write("p.json", R"({"format": "msinfer-hardware-profile", "version": 2})");
  auto p = load_hardware_profile(path);
  ASSERT_FALSE(p.is_ok());
  EXPECT_THAT(p.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(p.status().message(), HasSubstr("'version' must be 1"));
  EXPECT_FALSE(load_hardware_profile(tmp.path() / "missing.json").is_ok());
}

TEST(HardwareProfileTest, ProfileMustMatchTheModel) {
  const HardwareProfile p = estimate_profile(*find_gpu("H20"), config_of("mixtral-8x22b"));
  EXPECT_TRUE(check_profile_model(p, config_of("mixtral-8x22b")).is_ok());
  const Status s = check_profile_model(p, config_of("mixtral-8x7b"));
  ASSERT_FALSE(s.is_ok());
  EXPECT_THAT(s.message(), HasSubstr("model.hidden_size is 6144, the model has 4096"));
}

}  // namespace
}  // namespace msi::planner

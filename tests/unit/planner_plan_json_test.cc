// Deployment plan files: the JSON round trip (in memory and through a file), optional fields, and
// validation errors that name the field and the file.
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "planner/deployment_plan.h"
#include "test_util.h"

namespace msi::planner {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

DeploymentPlan sample_plan() {
  DeploymentPlan p;
  p.kind = PlanKind::kDisaggregated;
  p.model = "mixtral";
  p.attention_gpu = "H20";
  p.expert_gpu = "L40S";
  p.tp_a = 8;
  p.tp_e = 4;
  p.n_attention_workers = 2;
  p.n_expert_workers = 8;
  p.n_micro_batches = 4;
  p.micro_batch_size = 778;
  p.max_num_seqs = 3112;
  p.avg_seq_len = 1024;
  p.slo_tbt_ms = 150;
  p.has_prediction = true;
  p.predicted = {0.369, 0.418, 0.29, 94.7, 6224, 65750, 1369.8, 1024.8, 48, 64.16};
  return p;
}

TEST(DeploymentPlanTest, JsonRoundTrip) {
  const DeploymentPlan p = sample_plan();
  const json j = deployment_plan_to_json(p);
  EXPECT_EQ(j["format"], "msinfer-deployment-plan");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["kind"], "disaggregated");
  EXPECT_EQ(j["n_attention_workers"], 2);
  EXPECT_EQ(j["predicted"]["tbt_ms"], 94.7);
  auto back = deployment_plan_from_json(j);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(deployment_plan_to_json(*back), j);
  EXPECT_EQ(back->n_gpus(), 2 * 8 + 8 * 4);
  EXPECT_TRUE(back->has_prediction);
  EXPECT_DOUBLE_EQ(back->predicted.tokens_per_s_per_cost, 1024.8);
}

TEST(DeploymentPlanTest, FileRoundTrip) {
  test::TempDir tmp;
  const auto path = tmp.path() / "plan.json";
  ASSERT_TRUE(save_deployment_plan(sample_plan(), path).is_ok());
  auto loaded = load_deployment_plan(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  EXPECT_EQ(deployment_plan_to_json(*loaded), deployment_plan_to_json(sample_plan()));
  EXPECT_FALSE(save_deployment_plan(sample_plan(), tmp.path() / "no-dir" / "plan.json").is_ok());
}

TEST(DeploymentPlanTest, HandWrittenPlanNeedsOnlyTheLayout) {
  const json j = json::parse(R"({
    "format": "msinfer-deployment-plan", "version": 1, "kind": "colocated",
    "attention_gpu": "H20", "expert_gpu": "h20", "tp_a": 1, "tp_e": 1,
    "n_attention_workers": 8, "n_expert_workers": 8, "n_micro_batches": 1, "max_num_seqs": 300})");
  auto p = deployment_plan_from_json(j);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ(p->kind, PlanKind::kColocated);
  EXPECT_EQ(p->micro_batch_size, 300);  // max_num_seqs over the micro-batches
  EXPECT_FALSE(p->has_prediction);
  EXPECT_EQ(p->n_gpus(), 8);
  EXPECT_EQ(p->model, "");
}

std::string error_after(const std::function<void(json&)>& edit) {
  json j = deployment_plan_to_json(sample_plan());
  edit(j);
  auto p = deployment_plan_from_json(j);
  return p.is_ok() ? "(no error)" : p.status().message();
}

TEST(DeploymentPlanTest, ValidationNamesTheField) {
  EXPECT_THAT(error_after([](json& j) { j.erase("kind"); }), HasSubstr("plan has no 'kind'"));
  EXPECT_THAT(error_after([](json& j) { j["kind"] = "monolithic"; }),
              HasSubstr("'kind' must be \"disaggregated\" or \"colocated\", got \"monolithic\""));
  EXPECT_THAT(error_after([](json& j) { j["tp_a"] = 0; }),
              HasSubstr("plan field 'tp_a' must be an integer >= 1, got 0"));
  EXPECT_THAT(error_after([](json& j) { j["tp_e"] = "4"; }),
              HasSubstr("'tp_e' must be an integer >= 1, got \"4\""));
  EXPECT_THAT(error_after([](json& j) { j["n_micro_batches"] = 2.5; }),
              HasSubstr("'n_micro_batches' must be an integer >= 1"));
  EXPECT_THAT(error_after([](json& j) { j.erase("n_expert_workers"); }),
              HasSubstr("plan has no 'n_expert_workers'"));
  EXPECT_THAT(error_after([](json& j) { j["attention_gpu"] = ""; }),
              HasSubstr("'attention_gpu' must be a GPU name"));
  EXPECT_THAT(
      error_after([](json& j) { j["max_num_seqs"] = 5000; }),
      HasSubstr("'max_num_seqs' must be at most n_micro_batches × micro_batch_size = 3112"));
  EXPECT_THAT(error_after([](json& j) { j["format"] = "msinfer-hardware-profile"; }),
              HasSubstr("'format' must be \"msinfer-deployment-plan\""));
  EXPECT_THAT(error_after([](json& j) { j["version"] = 2; }), HasSubstr("'version' must be 1"));
  EXPECT_THAT(error_after([](json& j) { j["predicted"]["tbt_ms"] = "fast"; }),
              HasSubstr("'predicted.tbt_ms' must be a number >= 0"));
  EXPECT_THAT(error_after([](json& j) { j["slo_tbt_ms"] = -1; }),
              HasSubstr("'slo_tbt_ms' must be a number >= 0"));
  EXPECT_THAT(error_after([](json& j) { j["kind"] = "colocated"; }),
              HasSubstr("'expert_gpu' must be the attention_gpu \"H20\" in a colocated plan"));
  EXPECT_THAT(error_after([](json& j) {
                j["kind"] = "colocated";
                j["expert_gpu"] = "H20";
              }),
              HasSubstr("n_expert_workers × tp_e = n_attention_workers × tp_a = 16"));
  EXPECT_THAT(error_after([](json&) {}), HasSubstr("(no error)"));
  auto not_object = deployment_plan_from_json(json::array());
  EXPECT_THAT(not_object.status().message(), HasSubstr("a plan must be a JSON object"));
}

TEST(DeploymentPlanTest, LoadErrorsNameTheFile) {
  test::TempDir tmp;
  const auto path =
      tmp.write("plan.json", R"({"format": "msinfer-deployment-plan", "version": 1})");
  auto p = load_deployment_plan(path);
  ASSERT_FALSE(p.is_ok());
  EXPECT_THAT(p.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(p.status().message(), HasSubstr("plan has no 'kind'"));
  auto missing = load_deployment_plan(tmp.path() / "missing.json");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("missing.json"));
  const auto broken = tmp.write("broken.json", "{not json");
  EXPECT_THAT(load_deployment_plan(broken).status().message(), HasSubstr("broken.json"));
}

}  // namespace
}  // namespace msi::planner

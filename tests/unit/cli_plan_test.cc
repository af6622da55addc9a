// `msinfer plan` end to end: the real binary on Mixtral-8x22B's config, its table and JSON
// contracts, the plan file it writes, measured profiles overriding the roofline, and a clear
// error (exit 1, nothing on stdout) for each kind of bad input.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "planner/deployment_plan.h"
#include "planner/hardware_profile.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using msi::test::RunResult;
using msi::test::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kMixtral =
    fs::path(MSI_TEST_DATA_DIR).parent_path().parent_path() / "bench" / "configs" / "mixtral-8x22b";

std::vector<std::string> plan_args(std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "plan", "--model", kMixtral.string(), "--attention-gpu", "H20", "--expert-gpu", "L40S"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

json run_json(const std::vector<std::string>& args) {
  RunResult r = msi::test::msinfer(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? json::parse(r.out) : json();
}

void expect_error(const std::vector<std::string>& args, const std::string& message) {
  RunResult r = msi::test::msinfer(args);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT_EQ(r.exit_code, 1) << joined << "\nstderr: " << r.err;
  EXPECT_THAT(r.err, HasSubstr("msinfer: error:")) << joined;
  EXPECT_THAT(r.err, HasSubstr(message)) << joined;
  EXPECT_TRUE(r.out.empty()) << "no partial results on error: " << r.out;
}

TEST(CliPlan, TableNamesTheChosenPlanAndItsRunnersUp) {
  RunResult r = msi::test::msinfer(plan_args({}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("chosen    disaggregated:"));
  EXPECT_THAT(r.out, HasSubstr("H20 attention"));
  EXPECT_THAT(r.out, HasSubstr("L40S experts"));
  EXPECT_THAT(r.out, HasSubstr("T_a ms"));
  EXPECT_THAT(r.out, HasSubstr("tokens/s"));
  EXPECT_THAT(r.out, HasSubstr("coloc"));
  EXPECT_THAT(r.out, HasSubstr("disaggregation:"));
  EXPECT_THAT(r.out, HasSubstr("price 1.85"));
}

TEST(CliPlan, JsonContractAndPlanFile) {
  TempDir tmp;
  const fs::path out = tmp.path() / "plan.json";
  json j = run_json(plan_args({"--json", "--top", "3", "--out", out.string()}));
  const json& chosen = j["chosen"];
  EXPECT_EQ(chosen["kind"], "disaggregated");
  EXPECT_EQ(chosen["attention_gpu"], "H20");
  EXPECT_EQ(chosen["expert_gpu"], "L40S");
  EXPECT_EQ(chosen["max_num_seqs"],
            chosen["micro_batch_size"].get<int64_t>() * chosen["n_micro_batches"].get<int64_t>());
  EXPECT_LE(chosen["predicted"]["tbt_ms"].get<double>(), 150.0);
  ASSERT_EQ(j["candidates"].size(), 3u);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_GE(j["candidates"][i - 1]["predicted"]["tokens_per_s_per_cost"].get<double>(),
              j["candidates"][i]["predicted"]["tokens_per_s_per_cost"].get<double>());
  }
  EXPECT_TRUE(j["candidates"][0].contains("n_a_balance"));
  ASSERT_EQ(j["colocated"].size(), 2u);  // one per GPU type
  EXPECT_EQ(j["colocated"][0]["kind"], "colocated");
  EXPECT_EQ(j["gpus"][0]["source"], "roofline-estimate");
  // --out wrote the chosen plan, and it loads.
  auto plan = msi::planner::load_deployment_plan(out);
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  EXPECT_EQ(msi::planner::deployment_plan_to_json(*plan), chosen);
}

TEST(CliPlan, ModelAsConfigFileOrDirectoryAndGpuLists) {
  const json dir = run_json(plan_args({"--json"}));
  const json file = run_json({"plan", "--model", (kMixtral / "config.json").string(),
                              "--attention-gpu", "h20", "--expert-gpu", "l40s", "--json"});
  EXPECT_EQ(dir["chosen"], file["chosen"]);
  // Comparing GPU types: Table 3's GPUs on both sides, H20 attention and L40S experts win.
  const json table3 =
      run_json({"plan", "--model", kMixtral.string(), "--attention-gpu", "L20,H800,A800,H20,L40S",
                "--expert-gpu", "L20,H800,A800,H20,L40S", "--json", "--slo-tbt", "0.15s"});
  EXPECT_EQ(table3["chosen"]["attention_gpu"], "H20");
  EXPECT_EQ(table3["chosen"]["expert_gpu"], "L40S");
  EXPECT_EQ(table3["colocated"].size(), 5u);
}

TEST(CliPlan, ProfileOverridesTheRoofline) {
  TempDir tmp;
  auto config = msi::load_model_config(kMixtral);
  ASSERT_TRUE(config.is_ok());
  auto l40s = msi::planner::find_gpu("L40S");
  msi::planner::HardwareProfile p = msi::planner::estimate_profile(*l40s, *config);
  p.source = "measured";
  for (auto& e : p.expert) e.k4_ms *= 10;  // weight reads ten times slower than the roofline
  const fs::path path = tmp.write("l40s.json", msi::planner::hardware_profile_to_json(p).dump());
  const json j = run_json(plan_args({"--json", "--profile", path.string()}));
  EXPECT_EQ(j["gpus"][1]["name"], "L40S");
  EXPECT_EQ(j["gpus"][1]["source"], "measured");
  const json estimate = run_json(plan_args({"--json"}));
  EXPECT_LT(j["chosen"]["predicted"]["tokens_per_s_per_cost"].get<double>(),
            estimate["chosen"]["predicted"]["tokens_per_s_per_cost"].get<double>());
  // A profile of another model is refused.
  auto other = msi::load_model_config(kMixtral.parent_path() / "mixtral-8x7b");
  ASSERT_TRUE(other.is_ok());
  const fs::path wrong = tmp.write(
      "wrong.json",
      msi::planner::hardware_profile_to_json(msi::planner::estimate_profile(*l40s, *other)).dump());
  expect_error(plan_args({"--profile", wrong.string()}), "taken for another model");
  const fs::path broken = tmp.write("broken.json", R"({"format": "msinfer-hardware-profile"})");
  expect_error(plan_args({"--profile", broken.string()}), "profile has no 'version'");
}

TEST(CliPlan, PriceOverride) {
  const json base = run_json(plan_args({"--json"}));
  const json cheap = run_json(plan_args({"--json", "--price", "H20=0.5", "--price", "l40s=0.5"}));
  EXPECT_GT(cheap["chosen"]["predicted"]["tokens_per_s_per_cost"].get<double>(),
            base["chosen"]["predicted"]["tokens_per_s_per_cost"].get<double>());
  EXPECT_EQ(cheap["gpus"][0]["price"], 0.5);
  expect_error(plan_args({"--price", "H20"}), "--price must be NAME=VALUE");
  expect_error(plan_args({"--price", "H20=-1"}), "--price must be NAME=VALUE");
}

TEST(CliPlan, BadInputIsAClearError) {
  expect_error(
      {"plan", "--model", kMixtral.string(), "--attention-gpu", "X100", "--expert-gpu", "L40S"},
      "--attention-gpu: unknown GPU 'X100' (known GPUs: H100, H200, H20");
  expect_error(
      {"plan", "--model", kMixtral.string(), "--attention-gpu", "H20", "--expert-gpu", "H20,,L40S"},
      "--expert-gpu: empty GPU name");
  expect_error(plan_args({"--slo-tbt", "fast"}), "--slo-tbt must be a positive duration");
  expect_error(plan_args({"--slo-tbt", "150us"}), "--slo-tbt must be a positive duration");
  expect_error(plan_args({"--slo-tbt", "2ms"}),
               "no deployment of mixtral meets the constraints (TBT SLO 2 ms");
  expect_error(plan_args({"--max-gpus", "0"}), "GPU limit must be at least 1");
  expect_error(plan_args({"--seq-len", "0"}), "sequence length must be positive");
  expect_error(plan_args({"--n-attention", "guess"}), "--n-attention must be sweep or balance");
  expect_error(plan_args({"--top", "0"}), "--top must be at least 1");
  expect_error(
      {"plan", "--model", "/nonexistent/model", "--attention-gpu", "H20", "--expert-gpu", "L40S"},
      "no such file or directory");
  TempDir tmp;
  const fs::path dense = tmp.write("config.json", R"({"model_type": "llama"})");
  expect_error(
      {"plan", "--model", dense.string(), "--attention-gpu", "H20", "--expert-gpu", "L40S"},
      "model_type");
  const fs::path out_dir = tmp.path() / "no-such-dir" / "plan.json";
  RunResult r = msi::test::msinfer(plan_args({"--out", out_dir.string()}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot write"));

  // Flag syntax errors come from the parser: non-zero, with the flag named.
  RunResult missing =
      msi::test::msinfer({"plan", "--attention-gpu", "H20", "--expert-gpu", "L40S"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("--model"));
  RunResult not_a_number = msi::test::msinfer(plan_args({"--max-gpus", "many"}));
  EXPECT_NE(not_a_number.exit_code, 0);
  EXPECT_THAT(not_a_number.err, HasSubstr("--max-gpus"));
}

}  // namespace

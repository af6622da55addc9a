// The other modes of `msinfer plan`: --predict (one deployment through the performance model, with
// the pipeline simulator beside a disaggregated one), --simulate on the chosen plan, and
// --expert-load, whose placement — hot experts replicated — lowers the busiest worker's tokens and
// runs in the engine (--expert-placement) with the same outputs as without replicas.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using msi::test::RunResult;
using msi::test::slurp;
using msi::test::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;
const fs::path kConfigs = fs::path(MSI_TEST_DATA_DIR) / ".." / ".." / "bench" / "configs";

RunResult msinfer(const std::string& args) { return msi::test::msinfer_shell(args); }

json ok_json(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

TEST(PlanModes, PredictOneDeploymentAndSimulateIt) {
  const std::string base =
      "plan --model " + (kConfigs / "mixtral-8x7b").string() + " --attention-gpu H200";
  const json one = ok_json(msinfer(base + " --predict colocated:1 --batch-size 64 --seq-len 1024"));
  ASSERT_FALSE(one.is_discarded());
  EXPECT_EQ(one["deployment"], "colocated");
  EXPECT_GT(one["predicted"]["tbt_ms"].get<double>(), 0.0);
  const json dis =
      ok_json(msinfer(base + " --expert-gpu H200 --predict disaggregated:2:1 --batch-size 256"
                             " --micro-batches 3 --seq-len 2048"));
  ASSERT_FALSE(dis.is_discarded());
  EXPECT_EQ(dis["n_attention"], 2);
  EXPECT_EQ(dis["b_a"], 256.0 / 6);
  const double predicted = dis["predicted"]["tbt_ms"], simulated = dis["simulated"]["step_ms"];
  EXPECT_NEAR(simulated / predicted, 1.0, 0.05);  // ±5% jitter per stage
  // Search with the simulator on the chosen plan.
  const json searched =
      ok_json(msinfer(base + " --expert-gpu L40S --simulate --json --no-colocated"));
  ASSERT_FALSE(searched.is_discarded());
  ASSERT_TRUE(searched.contains("simulated"));
  EXPECT_NEAR(searched["simulated"]["step_ms"].get<double>() /
                  searched["chosen"]["predicted"]["tbt_ms"].get<double>(),
              1.0, 0.05);
}

TEST(PlanModes, ExpertLoadPlacementRunsInTheEngine) {
  TempDir tmp;
  // A skewed load over tiny-mixtral's 8 experts (3 layers): expert 0 takes most tokens.
  const json load = {{"expert_load",
                      {{"window_steps", 10},
                       {"n_experts", 8},
                       {"tokens_per_expert",
                        {{800, 10, 10, 10, 10, 10, 10, 10},
                         {700, 20, 10, 10, 10, 10, 10, 10},
                         {900, 5, 5, 5, 5, 5, 5, 5}}}}}};
  std::ofstream(tmp.path() / "load.json") << load.dump();
  const fs::path placement = tmp.path() / "placement.json";
  const json report = ok_json(msinfer("plan --model " + (kData / "tiny-mixtral").string() +
                                      " --expert-load " + (tmp.path() / "load.json").string() +
                                      " --expert-workers 2 --out " + placement.string()));
  ASSERT_FALSE(report.is_discarded());
  EXPECT_LT(report["after"]["max"].get<double>(), report["before"]["max"].get<double>());
  EXPECT_GE(report["n_replicas"].get<int>(), 1);
  // The engine runs the proposal; replicated experts split their tokens, the outputs do not move.
  const std::string gen =
      "generate --model " + (kData / "tiny-mixtral").string() +
      " --prompt-ids 1,383,302,331,444,341 --prompt-ids 1,1969,1310 --max-tokens 5 --ignore-eos"
      " --return-logits";
  const json plain = ok_json(msinfer(gen))["results"];
  const json replicated = ok_json(
      msinfer(gen + " --expert-workers 2 --expert-placement " + placement.string()))["results"];
  ASSERT_EQ(plain.size(), replicated.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i]["output_ids"], replicated[i]["output_ids"]);
    for (size_t j = 0; j < plain[i]["logits"].size(); ++j) {
      for (size_t v = 0; v < plain[i]["logits"][j].size(); ++v) {
        ASSERT_NEAR(plain[i]["logits"][j][v].get<double>(),
                    replicated[i]["logits"][j][v].get<double>(), 1e-5);
      }
    }
  }
}

TEST(PlanModes, BadModeFlagsAreClearErrors) {
  const std::string base =
      "plan --model " + (kConfigs / "mixtral-8x7b").string() + " --attention-gpu H200";
  RunResult r = msinfer(base + " --predict sideways:2 --batch-size 8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--predict takes colocated:GPUS or disaggregated"));
  r = msinfer(base + " --predict colocated:1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--predict needs --batch-size"));
  r = msinfer(base + " --expert-load /nonexistent.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--expert-load needs --expert-workers"));
  r = msinfer("plan --model " + (kConfigs / "mixtral-8x7b").string() + " --expert-gpu H200");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--attention-gpu is required"));
}

}  // namespace

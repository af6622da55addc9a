// `--plan plan.json` (what `msinfer plan --out` writes) loads into the engine: the plan's worker
// counts, micro-batches and sequences per worker replace the flags', devices are numbered when
// not given, the outputs equal the single-worker run's, and plans the engine cannot run (tensor
// parallelism) or cannot read are clear errors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "generate_outputs.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using msi::test::RunResult;
using msi::test::slurp;
using msi::test::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

RunResult msinfer(const std::string& args) { return msi::test::msinfer_shell(args); }

json plan(const std::string& kind, int n_a, int n_e, int m, int b_a, int tp_a = 1) {
  return {{"format", "msinfer-deployment-plan"},
          {"version", 1},
          {"kind", kind},
          {"model", "mixtral"},
          {"attention_gpu", "H200"},
          {"expert_gpu", "H200"},
          {"tp_a", tp_a},
          {"tp_e", 1},
          {"n_attention_workers", n_a},
          {"n_expert_workers", n_e},
          {"n_micro_batches", m},
          {"micro_batch_size", b_a},
          {"max_num_seqs", m * b_a},
          {"avg_seq_len", 64},
          {"slo_tbt_ms", 150}};
}

fs::path write(const TempDir& tmp, const std::string& name, const json& j) {
  const fs::path p = tmp.path() / name;
  std::ofstream(p) << j.dump();
  return p;
}

const std::string kBase =
    "generate --model " + (kData / "tiny-mixtral").string() +
    " --prompt-ids 1,383,302,331,444,341 --prompt-ids 1,1969,1310 --prompt-ids 7,8,9"
    " --max-tokens 5 --ignore-eos --return-logits";

TEST(PlanEngine, DisaggregatedPlanRunsItsWorkers) {
  TempDir tmp;
  const fs::path p = write(tmp, "plan.json", plan("disaggregated", 2, 2, 2, 4));
  const fs::path trace = tmp.path() / "trace.json";
  const RunResult planned = msinfer(kBase + " --plan " + p.string() + " --trace " + trace.string());
  msi::test::expect_same_generate_outputs(msinfer(kBase), planned, "disaggregated plan");
  // The trace names every worker the plan asked for.
  std::set<std::string> workers;
  const json t = json::parse(slurp(trace));
  for (const auto& ev : t["traceEvents"]) {
    if (ev["ph"] == "M" && ev["name"] == "thread_name")
      workers.insert(ev["args"]["name"].get<std::string>());
  }
  for (const char* w :
       {"attention worker 0", "attention worker 1", "expert worker 0", "expert worker 1"}) {
    EXPECT_TRUE(workers.count(w)) << w;
  }
  EXPECT_FALSE(workers.count("expert worker 2"));
}

TEST(PlanEngine, ColocatedPlanRuns) {
  TempDir tmp;
  const fs::path p = write(tmp, "plan.json", plan("colocated", 1, 1, 1, 8));
  msi::test::expect_same_generate_outputs(msinfer(kBase), msinfer(kBase + " --plan " + p.string()),
                                          "colocated plan");
}

TEST(PlanEngine, PlansTheEngineCannotRunAreClearErrors) {
  TempDir tmp;
  const fs::path tp = write(tmp, "tp.json", plan("disaggregated", 2, 2, 2, 4, /*tp_a=*/2));
  RunResult r = msinfer(kBase + " --plan " + tp.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("the plan needs tensor parallelism (tp_a 2, tp_e 1)"));
  r = msinfer(kBase + " --plan " + (tmp.path() / "missing.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--plan"));
  json bad = plan("disaggregated", 2, 2, 2, 4);
  bad["max_num_seqs"] = 99;
  r = msinfer(kBase + " --plan " + write(tmp, "bad.json", bad).string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("max_num_seqs"));
}

}  // namespace

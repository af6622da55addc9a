// `--expert-placement FILE`: the engine runs a placement with replicated experts (what
// `msinfer plan --expert-load` proposes) and splits each replicated expert's tokens across its
// replicas; the outputs equal the single-worker run's, on the host M2N path (threads and worker
// processes) and on the peer transport (CPU "devices"), and bad placements are clear errors.
#include <cmath>
#include <filesystem>
#include <fstream>
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

fs::path write_placement(const TempDir& tmp, const std::string& name, const json& j) {
  const fs::path p = tmp.path() / name;
  std::ofstream(p) << j.dump();
  return p;
}

TEST(ExpertPlacementCli, ReplicasGiveTheSameOutputsOnEveryTransport) {
  TempDir tmp;
  // tiny-mixtral: 8 experts. Experts 0 and 4 on both workers, the plan's report shape (the
  // placement under "placement") for one file and the bare placement for the other.
  const json placement = {{"n_experts", 8}, {"workers", {{0, 1, 2, 3, 4}, {0, 4, 5, 6, 7}}}};
  const fs::path bare = write_placement(tmp, "bare.json", placement);
  const fs::path report =
      write_placement(tmp, "report.json", {{"placement", placement}, {"before", {}}});
  const std::string base =
      "generate --model " + (kData / "tiny-mixtral").string() +
      " --prompt-ids 1,383,302,331,444,341 --prompt-ids 1,1969,1310 --prompt-ids 5,6,7,8,9,10,11"
      " --max-tokens 6 --ignore-eos --return-logits";
  const RunResult single = msinfer(base);
  msi::test::expect_same_generate_outputs(
      single, msinfer(base + " --expert-workers 2 --expert-placement " + bare.string()), "threads");
  msi::test::expect_same_generate_outputs(
      single,
      msinfer(base + " --expert-workers 2 --micro-batches 2 --transport shm --expert-placement " +
              report.string()),
      "processes");
  msi::test::expect_same_generate_outputs(
      single,
      msinfer(base +
              " --attention-devices cpu --expert-devices cpu,cpu --micro-batches 2"
              " --expert-placement " +
              bare.string()),
      "peer transport");
}

TEST(ExpertPlacementCli, BadPlacementsAreClearErrors) {
  TempDir tmp;
  const std::string base = "generate --model " + (kData / "tiny-mixtral").string() +
                           " --prompt-ids 1,2,3 --max-tokens 2";
  RunResult r = msinfer(base + " --expert-workers 2 --expert-placement " +
                        (tmp.path() / "missing.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read --expert-placement"));
  const fs::path three =
      write_placement(tmp, "three.json", {{"workers", {{0, 1, 2}, {3, 4, 5}, {6, 7}}}});
  r = msinfer(base + " --expert-workers 2 --expert-placement " + three.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("places experts on 3 workers, the deployment has 2"));
  const fs::path missing_expert =
      write_placement(tmp, "gap.json", {{"workers", {{0, 1, 2}, {4, 5, 6, 7}}}});
  r = msinfer(base + " --expert-workers 2 --expert-placement " + missing_expert.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("expert 3 is on no worker"));
  std::ofstream(tmp.path() / "junk.json") << "{not json";
  r = msinfer(base + " --expert-workers 2 --expert-placement " +
              (tmp.path() / "junk.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not valid JSON"));
}

}  // namespace

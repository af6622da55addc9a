// `msinfer profile` on the CPU backend with the tiny fixture: it runs the decode benchmark over the
// grid, fits the performance model's coefficients and writes a hardware profile that the planner's
// reader accepts; bad flags are clear errors.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "planner/hardware_profile.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using msi::test::RunResult;
using msi::test::slurp;
using msi::test::TempDir;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

RunResult msinfer(const std::string& args) { return msi::test::msinfer_shell(args); }

TEST(ProfileCli, WritesAProfileThePlannerReads) {
  TempDir tmp;
  const fs::path out = tmp.path() / "profile.json";
  const RunResult r = msinfer(
      "profile --model " + (kData / "tiny-mixtral").string() +
      " --device cpu --batch-sizes 2,4,8 --seq-lens 16,48 --output-len 6 --no-progress --json"
      " --out " +
      out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto printed = nlohmann::json::parse(r.out);
  EXPECT_EQ(printed["points"].size(), 6u);  // 3 batch sizes × 2 lengths
  for (const auto& p : printed["points"]) {
    EXPECT_GT(p["t_a_ms_per_layer"].get<double>(), 0.0);
    EXPECT_GT(p["t_e_ms_per_layer"].get<double>(), 0.0);
  }
  auto profile = msi::planner::load_hardware_profile(out);
  ASSERT_TRUE(profile.is_ok()) << profile.status().message();
  EXPECT_EQ(profile->gpu, "cpu");
  EXPECT_EQ(profile->source, "measured");
  EXPECT_EQ(profile->model.model_type, "mixtral");
  ASSERT_EQ(profile->attention.size(), 2u);
  EXPECT_EQ(profile->attention[0].seq_len, 16);
  EXPECT_EQ(profile->attention[1].seq_len, 48);
  ASSERT_EQ(profile->expert.size(), 1u);
  EXPECT_GE(profile->expert[0].k3_ms, 0.0);
  EXPECT_GT(profile->expert[0].k3_ms + profile->expert[0].k4_ms, 0.0);
  EXPECT_THAT(profile->notes, HasSubstr("max residual"));
}

TEST(ProfileCli, BadFlagsAreClearErrors) {
  const std::string base =
      "profile --model " + (kData / "tiny-mixtral").string() + " --device cpu --no-progress";
  RunResult r = msinfer(base + " --batch-sizes 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--batch-sizes needs at least two sizes"));
  r = msinfer(base + " --batch-sizes 4,x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--batch-sizes takes positive integers"));
  r = msinfer(base + " --peer-device gpu1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--peer-device must be a CUDA device"));
  r = msinfer("profile --model " + (kData / "no-such-model").string() +
              " --device cpu --no-progress --batch-sizes 1,2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("msinfer: error:"));
}

}  // namespace

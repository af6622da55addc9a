// The msinfer binary on a GPU: generate (greedy and seeded sampling, threads and processes) and
// the errors a GPU deployment can meet. Skips without a CUDA device. The binary is
// $MSINFER_BINARY when set (binaries carried to a GPU machine), else the build's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "test_util.h"

namespace {

using ::testing::HasSubstr;
using msi::test::RunResult;

const std::string kModel = std::string(MSI_TEST_DATA_DIR) + "/tiny-mixtral";

RunResult msinfer(const std::string& args) {
  const char* bin = std::getenv("MSINFER_BINARY");
  if (bin == nullptr) return msi::test::msinfer_shell(args);
  return msi::test::run_program("/bin/sh", {"-c", std::string(bin) + " " + args}, 120);
}

class CliGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!msi::make_backend("cuda:0").is_ok()) GTEST_SKIP() << "no CUDA device";
  }
};

nlohmann::json outputs(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

TEST_F(CliGpuTest, GreedyOnTheGpuMatchesTheCpuAndSurvivesProcesses) {
  const std::string base = "generate --model " + kModel + " --prompt-ids 1,383,302,331,444,341 --max-tokens 8";
  const auto cpu = outputs(msinfer(base));
  const auto gpu = outputs(msinfer(base + " --device cuda:0"));
  const auto gpu_shm = outputs(msinfer(base + " --device cuda:0 --transport shm --attention-workers 2"));
  ASSERT_FALSE(gpu.is_discarded());
  EXPECT_EQ(gpu["results"][0]["output_ids"].size(), 8u);
  EXPECT_EQ(gpu["results"][0]["output_ids"], cpu["results"][0]["output_ids"]);
  EXPECT_EQ(gpu_shm["results"][0]["output_ids"], gpu["results"][0]["output_ids"]);
}

TEST_F(CliGpuTest, SeededSamplingOnTheDeviceIsDeterministic) {
  const std::string args = "generate --model " + kModel +
                           " --prompt-ids 1,2,3 --prompt-ids 4,5 --max-tokens 12 --temperature 0.9 --top-p 0.9"
                           " --top-k 50 --seed 7 --ignore-eos --device cuda:0";
  const auto a = outputs(msinfer(args));
  const auto b = outputs(msinfer(args));
  ASSERT_FALSE(a.is_discarded());
  EXPECT_EQ(a["results"], b["results"]);
  EXPECT_EQ(a["results"][0]["output_ids"].size(), 12u);
}

TEST_F(CliGpuTest, GpuDeploymentErrorsAreClear) {
  const std::string base = "generate --model " + kModel + " --prompt-ids 1,2";
  RunResult r = msinfer(base + " --device cuda:0 --expert-workers 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("expert workers on a GPU need device-to-device transport"));
  r = msinfer(base + " --device cuda:99");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no device 99"));
}

}  // namespace

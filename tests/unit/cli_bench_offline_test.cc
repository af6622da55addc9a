// msinfer bench (offline) through the real binary on the CPU: the result object's fields and
// arithmetic, real and synthetic prefill, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace msi {
namespace {

using ::testing::HasSubstr;
using test::RunResult;
using test::msinfer_shell;

const std::string kModel = std::string(MSI_TEST_DATA_DIR) + "/tiny-qwen3-moe";

TEST(BenchOffline, JsonResultHasTheBreakdownAndTheFloor) {
  RunResult r = msinfer_shell("bench --model " + kModel + " --batch-size 4 --input-len 40 --output-len 9 --json --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["batch_size"], 4);
  EXPECT_EQ(j["prefill"], "synthetic");
  EXPECT_GT(j["ceilings"]["hbm_gbps"].get<double>(), 0.0);
  EXPECT_EQ(j["decode"]["timed_steps"], 9 - 2 - 3);  // output_len - warm-up - profiled
  const double median = j["decode"]["step_ms"]["median"];
  EXPECT_GT(median, 0.0);
  EXPECT_GE(j["decode"]["step_ms"]["p99"].get<double>(), median);
  EXPECT_NEAR(j["decode"]["throughput_tokens_per_s"].get<double>(), 4 / (median * 1e-3), 1e-6);
  ASSERT_EQ(j["profile"]["stages"].size(), 5u);
  double share = 0;
  for (const auto& s : j["profile"]["stages"]) {
    share += s["fraction"].get<double>();
    EXPECT_GE(s["floor_ms"].get<double>(), 0.0);
  }
  EXPECT_NEAR(share, 1.0, 1e-9);
  EXPECT_GT(j["profile"]["floor_ms"].get<double>(), 0.0);
  // 4 tokens x top-4 of 16 experts: between 4 and 16 experts see a token in each MoE layer.
  const double active = j["profile"]["active_experts_per_moe_layer"];
  EXPECT_GE(active, 4.0);
  EXPECT_LE(active, 16.0);
  // The load over the 3 profiled steps: every token routed to top-4 of 16 experts in each layer.
  const auto& load = j["expert_load"];
  EXPECT_EQ(load["window_steps"], 3);
  ASSERT_EQ(load["tokens_per_expert"].size(), 3u);  // layers
  for (const auto& layer : load["tokens_per_expert"]) {
    ASSERT_EQ(layer.size(), 16u);
    int64_t total = 0;
    for (const auto& t : layer) total += t.get<int64_t>();
    EXPECT_EQ(total, 3 * 4 * 4);  // steps × batch × top-k
  }
  // Contexts 40 + (6, 7, 8) + 1 over the profiled steps.
  EXPECT_DOUBLE_EQ(j["profile"]["mean_kv_tokens"].get<double>(), 4 * (40 + 8.0));
}

TEST(BenchOffline, RealPrefillAndTable) {
  RunResult r = msinfer_shell("bench --model " + kModel +
                        " --batch-size 3 --input-len 50 --output-len 7 --prefill real --max-num-batched-tokens 64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("real prefill"));
  EXPECT_THAT(r.out, HasSubstr("router_dispatch"));
  EXPECT_THAT(r.err, HasSubstr("[bench] decode: steps 7/7"));
}

// Disaggregated (experts on other devices, here CPU "devices" in threads): the same result object
// plus each side's busy fraction.
TEST(BenchOffline, DisaggregatedReportsBusyFractions) {
  RunResult r = msinfer_shell("bench --model " + kModel +
                              " --batch-size 4 --input-len 40 --output-len 9 --expert-devices cpu,cpu --micro-batches 2"
                              " --json --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["expert_devices"], nlohmann::json::array({"cpu", "cpu"}));
  EXPECT_EQ(j["micro_batches"], 2);
  EXPECT_FALSE(j["graphs"].get<bool>());  // the peer link waits on other devices: op by op
  for (const char* side : {"attention_device", "busiest_expert_device"}) {
    const double f = j["busy_fraction"][side];
    EXPECT_GT(f, 0.0) << side;
    EXPECT_LE(f, 1.0) << side;
  }
  EXPECT_GE(j["profile"]["active_experts_per_moe_layer"].get<double>(), 4.0);
  int64_t total = 0;
  for (const auto& t : j["expert_load"]["tokens_per_expert"][0]) total += t.get<int64_t>();
  EXPECT_EQ(total, 3 * 4 * 4);  // both expert workers' experts, by global id
}

#if !defined(MSI_CUDA)
TEST(BenchM2n, WithoutCudaIsAClearError) {
  RunResult r = msinfer_shell("bench m2n --json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("built without CUDA"));
}
#endif

TEST(BenchOffline, BadInputIsAClearError) {
  RunResult r = msinfer_shell("bench --batch-size 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--model is required"));
  r = msinfer_shell("bench --model " + kModel + " --output-len 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("must exceed the 2 warm-up and 3 profiled decode steps"));
  r = msinfer_shell("bench --model " + kModel + " --prefill sometimes");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--prefill must be synthetic or real"));
  r = msinfer_shell("bench --model " + kModel + " --device cuda:7 --output-len 8");
  EXPECT_EQ(r.exit_code, 1);
  r = msinfer_shell("bench --model " + kModel + " --input-len 100000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("max_position_embeddings"));
}

}  // namespace
}  // namespace msi

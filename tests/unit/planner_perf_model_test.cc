// The performance model: the paper's closed forms (T_total, balance, pipeline conditions), the
// model's byte counts for Mixtral-8x22B, link utilization, and one disaggregated and one colocated
// prediction worked out by hand, with each constraint violated in turn.
#include <cmath>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/config.h"
#include "planner/perf_model.h"

namespace msi::planner {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kConfigs =
    std::filesystem::path(MSI_TEST_DATA_DIR).parent_path().parent_path() / "bench" / "configs";

ModelConfig mixtral_8x22b() {
  auto c = load_model_config(kConfigs / "mixtral-8x22b");
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  return *c;
}

TEST(PerfModelTest, TotalTimeClosedForm) {
  // (T_a + T_e + 2·T_c) + T_f·(m·L − 1) with T_f = max(T_a, T_e).
  EXPECT_DOUBLE_EQ(total_ms(2.0, 3.0, 0.5, 3, 4), (2 + 3 + 1) + 3.0 * (3 * 4 - 1));
  EXPECT_DOUBLE_EQ(total_ms(3.0, 2.0, 0.0, 1, 1), 5.0);  // one micro-batch, one layer: no overlap
  // Many layers: the step approaches m·L·T_f.
  EXPECT_NEAR(total_ms(1.0, 1.0, 0.1, 3, 1000) / (3 * 1000), 1.0, 1e-3);
}

TEST(PerfModelTest, BalanceConditionEquatesAttentionAndExpertTime) {
  // n_a = k1·E / (k3·K·g); with zero intercepts T_a = T_e exactly at that n_a.
  EXPECT_DOUBLE_EQ(balanced_n_attention(0.02, 0.005, 8, 2), 16.0);
  EXPECT_DOUBLE_EQ(balanced_n_attention(0.02, 0.005, 8, 2, 2), 8.0);
  for (int64_t g : {1, 2, 4}) {
    const AttentionCoeffs a{1, 1024, 0.02, 0};
    const ExpertCoeffs e{1, 0.005, 0, {}};
    const double n_a = balanced_n_attention(a.k1_ms, e.k3_ms, 8, 2, g);
    const double b_a = 37;
    const double t_e = g * expert_ms(e, tokens_per_expert(static_cast<int>(n_a), b_a, 2, 8));
    EXPECT_DOUBLE_EQ(attention_ms(a, b_a), t_e) << "g " << g;
  }
  EXPECT_DOUBLE_EQ(tokens_per_expert(4, 32, 2, 8), 32.0);  // n_a·b_a·K/E
}

TEST(PerfModelTest, WorkerHitProbability) {
  EXPECT_DOUBLE_EQ(worker_hit_probability(8, 2, 1), 0.25);  // one expert per worker: K/E
  EXPECT_NEAR(worker_hit_probability(8, 2, 4), 1.0 - 12.0 / 56.0, 1e-12);
  EXPECT_DOUBLE_EQ(worker_hit_probability(8, 2, 8), 1.0);
  EXPECT_NEAR(worker_hit_probability(128, 8, 1), 8.0 / 128.0, 1e-12);
}

TEST(PerfModelTest, PipelineConditions) {
  EXPECT_TRUE(pipeline_hides_communication(1.0, 0.5, 3));   // 3 ≥ 2·1.5
  EXPECT_FALSE(pipeline_hides_communication(1.0, 0.5, 2));  // 2 < 3
  EXPECT_FALSE(pipeline_hides_communication(1.0, 1.0, 8));  // T_c < T_f fails
  EXPECT_TRUE(pipeline_hides_communication(1.0, 0.0, 2));   // m = 2 only without communication
  EXPECT_EQ(min_micro_batches(1.0, 0.0), 2);
  EXPECT_EQ(min_micro_batches(1.0, 0.5), 3);
  EXPECT_EQ(min_micro_batches(1.0, 0.6), 4);
  EXPECT_EQ(min_micro_batches(1.0, 0.99), 4);
}

TEST(PerfModelTest, MixtralShapeCountsBytes) {
  const ModelShape s = model_shape(mixtral_8x22b());
  EXPECT_EQ(s.n_layers, 56);
  EXPECT_EQ(s.n_moe_layers, 56);
  EXPECT_EQ(s.n_experts, 8);
  EXPECT_EQ(s.top_k, 2);
  EXPECT_DOUBLE_EQ(s.expert_params, 3.0 * 6144 * 16384);
  EXPECT_DOUBLE_EQ(s.attn_params_per_layer, 6144.0 * (6144 + 2 * 1024) + 6144.0 * 6144);
  // ~141 B parameters in all: 8 experts × 56 layers + the non-expert part.
  const double total = (s.non_expert_bytes(1) + s.expert_bytes(8, 1)) / 2;
  EXPECT_NEAR(total / 1e9, 140.6, 0.5);
  // One expert of every layer: 3·6144·16384·56·2 bytes ≈ 33.8 GB, split by tp_e.
  EXPECT_DOUBLE_EQ(s.expert_bytes(1, 1), 3.0 * 6144 * 16384 * 56 * 2);
  EXPECT_DOUBLE_EQ(s.expert_bytes(2, 4), s.expert_bytes(1, 1) / 2);
  // KV per token: 2 (K, V) · 8 heads · 128 · 2 bytes · 56 layers; heads split by tp, at least 1.
  EXPECT_DOUBLE_EQ(s.kv_bytes_per_token(1), 2.0 * 8 * 128 * 2 * 56);
  EXPECT_DOUBLE_EQ(s.kv_bytes_per_token(2), s.kv_bytes_per_token(1) / 2);
  EXPECT_DOUBLE_EQ(s.kv_bytes_per_token(16), s.kv_bytes_per_token(8));
  EXPECT_LT(s.non_expert_bytes(2), s.non_expert_bytes(1));
}

TEST(PerfModelTest, LinkUtilizationIsPiecewiseLinearInLogBytes) {
  LinkProfile l;
  l.bandwidth_gbs = 50;
  l.utilization = {{1024, 0.2}, {4096, 0.6}, {1 << 20, 0.9}};
  EXPECT_DOUBLE_EQ(l.utilization_at(1024), 0.2);
  EXPECT_NEAR(l.utilization_at(2048), 0.4, 1e-12);  // halfway in log(bytes)
  EXPECT_DOUBLE_EQ(l.utilization_at(10), 0.2);      // clamped below
  EXPECT_DOUBLE_EQ(l.utilization_at(1e12), 0.9);    // and above
  // 1 GB at 50 GB/s and 90%: 22.2 ms.
  EXPECT_NEAR(l.transfer_ms(1e9, 1e9), 1e9 / (50e9 * 0.9) * 1e3, 1e-9);
  EXPECT_DOUBLE_EQ(l.transfer_ms(0, 1024), 0.0);

  // The latency + bandwidth curve: s / (s + latency·bandwidth).
  const LinkProfile lb = latency_bandwidth_link(50, 3);
  ASSERT_FALSE(lb.utilization.empty());
  for (size_t i = 1; i < lb.utilization.size(); ++i) {
    EXPECT_GT(lb.utilization[i].bytes, lb.utilization[i - 1].bytes);
    EXPECT_GT(lb.utilization[i].utilization, lb.utilization[i - 1].utilization);
  }
  const double s = 65536;
  EXPECT_NEAR(lb.utilization_at(s), s / (s + 3e-6 * 50e9), 1e-9);  // a sampled point
  EXPECT_GT(lb.utilization.back().utilization, 0.99);
}

// A small model with round numbers, for predictions checked by hand.
ModelShape toy_model() {
  ModelShape s;
  s.name = "toy";
  s.n_layers = s.n_moe_layers = 10;
  s.hidden = 1024;  // 2048-byte rows
  s.n_heads = s.n_kv_heads = 8;
  s.head_dim = 128;
  s.vocab = 0;
  s.n_experts = 8;
  s.top_k = 2;
  s.attn_params_per_layer = 1e6;
  s.expert_params = 1e6;
  return s;
}

LinkProfile flat_link(double gbs, double utilization) {
  LinkProfile l;
  l.bandwidth_gbs = gbs;
  l.utilization = {{1, utilization}, {1e12, utilization}};
  return l;
}

DisaggregatedSetup toy_setup() {
  DisaggregatedSetup s;
  s.model = toy_model();
  s.seq_len = 100;
  s.attention = {1, 100, 0.01, 0.1};
  s.expert = {1, 0.002, 0.2, {}};
  s.attention_link = s.expert_link = flat_link(10, 0.5);
  s.attention_usable_gib = s.expert_usable_gib = 1;
  s.attention_price = 2;
  s.expert_price = 1;
  return s;
}

TEST(PerfModelTest, DisaggregatedPredictionByHand) {
  const DisaggregatedSetup s = toy_setup();
  const Prediction p = predict_disaggregated(s, {4, 8, 3, 16}, 1000);
  ASSERT_TRUE(p.feasible()) << p.violation;
  EXPECT_DOUBLE_EQ(p.b_e, 16);                   // 4·16·2/8
  EXPECT_DOUBLE_EQ(p.t_a_ms, 0.01 * 16 + 0.1);   // 0.26
  EXPECT_DOUBLE_EQ(p.t_e_ms, 0.002 * 16 + 0.2);  // 0.232
  // Dispatch: each attention GPU sends 16 tokens × P(hit) 0.25 × 8 workers = 32 rows of 2048 B;
  // each expert GPU receives 4·16·0.25 = 16 rows; at 10 GB/s × 50%.
  EXPECT_NEAR(p.t_c_ms, 32 * 2048 / 5e9 * 1e3, 1e-12);
  EXPECT_DOUBLE_EQ(p.t_f_ms, 0.26);
  EXPECT_NEAR(p.tbt_ms, (0.26 + 0.232 + 2 * p.t_c_ms) + 0.26 * (3 * 10 - 1), 1e-12);
  EXPECT_DOUBLE_EQ(p.global_batch, 4 * 3 * 16);
  EXPECT_NEAR(p.tokens_per_s, 192 / (p.tbt_ms / 1000), 1e-6);
  EXPECT_EQ(p.n_gpus, 12);
  EXPECT_DOUBLE_EQ(p.cost, 4 * 2 + 8 * 1);
  EXPECT_NEAR(p.tokens_per_s_per_gpu, p.tokens_per_s / 12, 1e-9);
  EXPECT_NEAR(p.tokens_per_s_per_cost, p.tokens_per_s / 16, 1e-9);
  // Memory: 1e6·10 params·2 B + 3·16 sequences · 100 tokens · 40960 B of KV per token.
  const double gib = 1024.0 * 1024 * 1024;
  EXPECT_NEAR(p.attention_gib, (2e7 + 48 * 100 * 40960.0) / gib, 1e-12);
  EXPECT_NEAR(p.expert_gib, 2e7 / gib, 1e-12);
}

TEST(PerfModelTest, ExpertTensorParallelismFansTokensOutToEveryRank) {
  DisaggregatedSetup s = toy_setup();
  const Prediction one = predict_disaggregated(s, {4, 8, 3, 16}, 1000);
  s.tp_e = 2;
  const Prediction two = predict_disaggregated(s, {4, 8, 3, 16}, 1000);
  // Each attention GPU sends every row to both ranks: twice the bytes.
  EXPECT_NEAR(two.t_c_ms, 2 * one.t_c_ms, 1e-12);
  EXPECT_EQ(two.n_gpus, 4 + 16);
  EXPECT_NEAR(two.expert_gib, one.expert_gib / 2, 1e-15);
}

TEST(PerfModelTest, EachConstraintIsReported) {
  DisaggregatedSetup s = toy_setup();
  s.attention_usable_gib = 0.1;
  EXPECT_THAT(predict_disaggregated(s, {4, 8, 3, 16}, 1000).violation,
              HasSubstr("attention GPU needs"));
  s = toy_setup();
  s.expert_usable_gib = 0.01;
  EXPECT_THAT(predict_disaggregated(s, {4, 8, 3, 16}, 1000).violation,
              HasSubstr("expert GPU needs"));
  s = toy_setup();
  s.attention_link = flat_link(0.01, 0.5);  // a slow link: T_c ≥ T_f
  EXPECT_THAT(predict_disaggregated(s, {4, 8, 3, 16}, 1000).violation, HasSubstr("T_c"));
  s = toy_setup();
  EXPECT_THAT(predict_disaggregated(s, {4, 8, 2, 16}, 1000).violation,  // m = 2 with T_c > 0
              HasSubstr("m·T_f"));
  EXPECT_THAT(predict_disaggregated(s, {4, 8, 3, 16}, 8.0).violation, HasSubstr("> SLO 8.0 ms"));
  EXPECT_TRUE(predict_disaggregated(s, {4, 8, 3, 16}, 8.1).feasible());
}

TEST(PerfModelTest, ColocatedPredictionByHand) {
  ColocatedSetup s;
  s.model = toy_model();
  s.seq_len = 100;
  s.n_gpus = 4;
  s.experts_per_gpu = 2;
  s.attention = {1, 100, 0.01, 0.1};
  s.expert = {1, 0.002, 0.2, {}};
  s.link = flat_link(10, 0.5);
  s.usable_gib = 1;
  s.price = 2;
  const Prediction p = predict_colocated(s, 16, 1000);
  ASSERT_TRUE(p.feasible()) << p.violation;
  EXPECT_DOUBLE_EQ(p.b_e, 16);  // 4 groups · 16 · 2/8: experts see the whole batch
  EXPECT_DOUBLE_EQ(p.t_a_ms, 0.26);
  EXPECT_DOUBLE_EQ(p.t_e_ms, 2 * 0.232);  // two experts per GPU
  const double hit = 1 - 30.0 / 56;       // a token needs one of a GPU's two experts
  EXPECT_NEAR(p.t_c_ms, 16 * hit * 3 * 2048 / 5e9 * 1e3, 1e-12);
  EXPECT_NEAR(p.tbt_ms, 10 * (0.26 + 0.464 + 2 * p.t_c_ms), 1e-12);  // nothing overlaps
  EXPECT_DOUBLE_EQ(p.global_batch, 64);
  EXPECT_DOUBLE_EQ(p.cost, 8);
  EXPECT_THAT(predict_colocated(s, 16, 5).violation, HasSubstr("> SLO"));
  s.usable_gib = 0.01;
  EXPECT_THAT(predict_colocated(s, 16, 1000).violation, HasSubstr("colocated GPU needs"));
}

TEST(PerfModelTest, SetupsLookUpCoefficientsAndCheckLayouts) {
  const ModelShape model = model_shape(mixtral_8x22b());
  GpuSide h20{*find_gpu("H20"), estimate_profile(*find_gpu("H20"), mixtral_8x22b())};
  GpuSide l40s{*find_gpu("L40S"), estimate_profile(*find_gpu("L40S"), mixtral_8x22b())};
  auto s = make_disaggregated_setup(model, 1024, h20, l40s, 2, 4, 0.9);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(s->attention_usable_gib, 96 * 0.9);
  EXPECT_DOUBLE_EQ(s->expert_price, 1.08);
  EXPECT_DOUBLE_EQ(s->attention.seq_len, 1024);

  auto missing = make_disaggregated_setup(model, 1024, h20, l40s, 3, 1, 0.9);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no attention coefficients for tp 3"));
  EXPECT_THAT(missing.status().message(), HasSubstr("1, 2, 4, 8"));

  GpuSide no_link = l40s;
  no_link.profile.link = {};
  EXPECT_THAT(make_disaggregated_setup(model, 1024, h20, no_link, 1, 1, 0.9).status().message(),
              HasSubstr("no network link"));

  auto colocated = make_colocated_setup(model, 1024, l40s, 16, 2, 0.9);
  ASSERT_TRUE(colocated.is_ok()) << colocated.status().message();
  EXPECT_EQ(colocated->tp_e, 2);  // 16 GPUs for 8 experts: each expert split over 2
  EXPECT_EQ(colocated->experts_per_gpu, 1);
  EXPECT_DOUBLE_EQ(colocated->link.bandwidth_gbs, l40s.spec.nic_gbs);  // no NVLink
  auto four = make_colocated_setup(model, 1024, h20, 4, 1, 0.9);
  ASSERT_TRUE(four.is_ok());
  EXPECT_EQ(four->experts_per_gpu, 2);
  EXPECT_DOUBLE_EQ(four->link.bandwidth_gbs, 450);  // one node: NVLink, one direction
  EXPECT_THAT(make_colocated_setup(model, 1024, h20, 6, 1, 0.9).status().message(),
              HasSubstr("neither divide nor are divided by 8 experts"));
  EXPECT_THAT(make_colocated_setup(model, 1024, h20, 6, 4, 0.9).status().message(),
              HasSubstr("not a positive multiple of tp_a 4"));
}

}  // namespace
}  // namespace msi::planner

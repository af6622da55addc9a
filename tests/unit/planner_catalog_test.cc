// GPU catalog: the entries and their sources, MegaScale-Infer's Table 3 prices, the per-cost
// ordering that motivates heterogeneous deployment (§4.3), and case-insensitive lookups with
// errors that list the known GPUs.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "planner/gpu_catalog.h"

namespace msi::planner {
namespace {

using ::testing::HasSubstr;

GpuSpec gpu(const std::string& name) {
  auto g = find_gpu(name);
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  return g.is_ok() ? *g : GpuSpec{};
}

TEST(GpuCatalogTest, HasTheIssuesGpusInOrderWithSources) {
  std::vector<std::string> names;
  for (const GpuSpec& g : gpu_catalog()) {
    names.push_back(g.name);
    EXPECT_GT(g.memory_gib, 0) << g.name;
    EXPECT_GT(g.hbm_tbs, 0) << g.name;
    EXPECT_GT(g.bf16_tflops, 0) << g.name;
    EXPECT_GT(g.pcie_gbs, 0) << g.name;
    EXPECT_GT(g.nic_gbs, 0) << g.name;
    EXPECT_GT(g.price, 0) << g.name;
    EXPECT_GE(g.nvlink_gbs, 0) << g.name;
    EXPECT_THAT(g.source, HasSubstr("NVIDIA")) << g.name << ": every entry cites its spec sheet";
    if (g.price_is_estimate) {
      EXPECT_THAT(g.source, HasSubstr("estimate")) << g.name;
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"H100", "H200", "H20", "H800", "A800", "A100", "L40S",
                                             "L20", "B200"}));
}

TEST(GpuCatalogTest, Table3PricesAreNormalizedToL20) {
  // MegaScale-Infer Table 3: price per chip normalized to L20.
  const std::pair<const char*, double> table3[] = {
      {"L20", 1.00}, {"L40S", 1.08}, {"H20", 1.85}, {"A800", 2.26}, {"H800", 5.28}};
  for (const auto& [name, price] : table3) {
    EXPECT_DOUBLE_EQ(gpu(name).price, price) << name;
    EXPECT_FALSE(gpu(name).price_is_estimate) << name;
    EXPECT_THAT(gpu(name).source, HasSubstr("[T3]")) << name;
  }
  for (const char* name : {"H100", "H200", "A100", "B200"}) {
    EXPECT_TRUE(gpu(name).price_is_estimate) << name << " is not in Table 3";
  }
}

TEST(GpuCatalogTest, SpecSheetValues) {
  EXPECT_DOUBLE_EQ(gpu("H20").memory_gib, 96);
  EXPECT_DOUBLE_EQ(gpu("H20").hbm_tbs, 4.0);
  EXPECT_DOUBLE_EQ(gpu("H20").bf16_tflops, 148);
  EXPECT_DOUBLE_EQ(gpu("L40S").bf16_tflops, 362);  // dense; 733 is "with sparsity"
  EXPECT_DOUBLE_EQ(gpu("L40S").hbm_tbs, 0.864);
  EXPECT_DOUBLE_EQ(gpu("H800").bf16_tflops, 989);
  EXPECT_DOUBLE_EQ(gpu("H800").nvlink_gbs, 400);
  EXPECT_DOUBLE_EQ(gpu("H100").nvlink_gbs, 900);
  EXPECT_DOUBLE_EQ(gpu("H100").nvlink_one_way_gbs(), 450);
  // Without NVLink, tensor-parallel collectives go over PCIe.
  EXPECT_DOUBLE_EQ(gpu("L40S").nvlink_gbs, 0);
  EXPECT_DOUBLE_EQ(gpu("L40S").intra_node_gbs(), gpu("L40S").pcie_gbs);
  EXPECT_DOUBLE_EQ(gpu("L20").nvlink_gbs, 0);
}

TEST(GpuCatalogTest, PerCostColumnsMotivateHeterogeneousDeployment) {
  // §4.3: H20 has the most memory capacity and bandwidth per cost (attention: KV-bound), L40S
  // the most compute per cost (experts: GEMM-bound) among Table 3's GPUs.
  const std::vector<std::string> table3 = {"L20", "H800", "A800", "H20", "L40S"};
  const auto best = [&](auto per_cost) {
    return *std::max_element(table3.begin(), table3.end(), [&](const auto& a, const auto& b) {
      return per_cost(gpu(a)) < per_cost(gpu(b));
    });
  };
  EXPECT_EQ(best([](const GpuSpec& g) { return g.hbm_tbs / g.price; }), "H20");
  EXPECT_EQ(best([](const GpuSpec& g) { return g.memory_gib / g.price; }), "H20");
  EXPECT_EQ(best([](const GpuSpec& g) { return g.bf16_tflops / g.price; }), "L40S");
}

TEST(GpuCatalogTest, LookupIgnoresCaseAndSpaces) {
  auto g = find_gpu("  l40s ");
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ(g->name, "L40S");
  EXPECT_EQ(find_gpu("h20")->name, "H20");
  EXPECT_EQ(find_gpu("B200")->name, "B200");
}

TEST(GpuCatalogTest, UnknownGpuListsTheKnownOnes) {
  auto g = find_gpu("X100");
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), HasSubstr("unknown GPU 'X100'"));
  EXPECT_THAT(g.status().message(),
              HasSubstr("H100, H200, H20, H800, A800, A100, L40S, L20, B200"));
}

TEST(GpuCatalogTest, CommaSeparatedLists) {
  auto list = find_gpus("H20, l40s,H20");
  ASSERT_TRUE(list.is_ok()) << list.status().message();
  ASSERT_EQ(list->size(), 2u);  // duplicates dropped, order kept
  EXPECT_EQ((*list)[0].name, "H20");
  EXPECT_EQ((*list)[1].name, "L40S");

  EXPECT_THAT(find_gpus("").status().message(), HasSubstr("empty GPU list"));
  EXPECT_THAT(find_gpus("H20,,L40S").status().message(), HasSubstr("empty GPU name"));
  EXPECT_THAT(find_gpus("H20,Z9").status().message(), HasSubstr("unknown GPU 'Z9'"));
}

}  // namespace
}  // namespace msi::planner

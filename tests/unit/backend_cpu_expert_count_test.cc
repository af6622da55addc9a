// CpuBackend::count_experts, the oracle of the GPU tally: counts equal a direct count of the ids
// (accumulated in place), n_valid limits the rows (less than n, more than n, zero, negative), ids
// outside [0, n_experts) are skipped, an empty batch adds nothing, and guards around the counts
// stay untouched.
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"

namespace msi {
namespace {

constexpr int32_t kGuard = -5555;
constexpr int64_t kGuardLen = 8;

// Runs count_experts over ids [n, top_k] into counts that start at `start` (between guards);
// n_valid < -1000: no n_valid tensor.
std::vector<int32_t> count(const std::vector<int32_t>& ids, int64_t top_k, int64_t n_experts,
                           int32_t n_valid, const std::vector<int32_t>& start) {
  CpuBackend cpu;
  const int64_t n = static_cast<int64_t>(ids.size()) / top_k;
  std::vector<int32_t> buf(static_cast<size_t>(n_experts + 2 * kGuardLen), kGuard);
  std::copy(start.begin(), start.end(), buf.begin() + kGuardLen);
  int32_t nv = n_valid;
  const Tensor valid = n_valid < -1000 ? Tensor{} : Tensor::view(&nv, DType::kI32, {1});
  cpu.count_experts(Tensor::view(const_cast<int32_t*>(ids.data()), DType::kI32, {n, top_k}), valid,
                    Tensor::view(buf.data() + kGuardLen, DType::kI32, {n_experts}));
  for (int64_t i = 0; i < kGuardLen; ++i) {
    EXPECT_EQ(buf[static_cast<size_t>(i)], kGuard) << "guard before counts overwritten";
    EXPECT_EQ(buf[buf.size() - 1 - static_cast<size_t>(i)], kGuard)
        << "guard after counts overwritten";
  }
  return {buf.begin() + kGuardLen, buf.end() - kGuardLen};
}

constexpr int32_t kNoValid = -2000;

TEST(CpuExpertCount, CountsEveryPairAndAccumulates) {
  // 3 tokens, top-2, 4 experts.
  const std::vector<int32_t> ids = {0, 2, 2, 3, 0, 2};
  EXPECT_EQ(count(ids, 2, 4, kNoValid, {0, 0, 0, 0}), (std::vector<int32_t>{2, 0, 3, 1}));
  EXPECT_EQ(count(ids, 2, 4, kNoValid, {10, 20, 30, 40}), (std::vector<int32_t>{12, 20, 33, 41}));
}

TEST(CpuExpertCount, NValidLimitsTheRows) {
  const std::vector<int32_t> ids = {0, 1, 1, 2, 3, 3};  // rows {0,1} {1,2} {3,3}
  EXPECT_EQ(count(ids, 2, 4, 2, {0, 0, 0, 0}), (std::vector<int32_t>{1, 2, 1, 0}));
  EXPECT_EQ(count(ids, 2, 4, 0, {0, 0, 0, 0}), (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(count(ids, 2, 4, -3, {0, 0, 0, 0}), (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(count(ids, 2, 4, 99, {0, 0, 0, 0}),
            (std::vector<int32_t>{1, 2, 1, 2}));  // clamped to n
}

TEST(CpuExpertCount, SkipsIdsOutOfRange) {
  const std::vector<int32_t> ids = {-1, 0, 4, 3, 1000, -7, 2, 2};
  EXPECT_EQ(count(ids, 2, 4, kNoValid, {0, 0, 0, 0}), (std::vector<int32_t>{1, 0, 2, 1}));
}

TEST(CpuExpertCount, EmptyBatchAddsNothing) {
  EXPECT_EQ(count({}, 2, 3, kNoValid, {5, 6, 7}), (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(count({}, 2, 3, 4, {5, 6, 7}), (std::vector<int32_t>{5, 6, 7}));
}

TEST(CpuExpertCount, MatchesADirectCountOnRandomIds) {
  std::mt19937 rng(3);
  const int64_t n = 300, top_k = 8, n_experts = 64;
  std::uniform_int_distribution<int32_t> any(-3, static_cast<int32_t>(n_experts) + 2);
  std::vector<int32_t> ids(static_cast<size_t>(n * top_k));
  for (int32_t& e : ids) e = any(rng);
  for (int32_t n_valid : {kNoValid, 0, 1, 117, 300}) {
    const int64_t rows = n_valid == kNoValid ? n : n_valid;
    std::vector<int32_t> want(static_cast<size_t>(n_experts), 0);
    for (int64_t i = 0; i < rows * top_k; ++i) {
      if (ids[static_cast<size_t>(i)] >= 0 && ids[static_cast<size_t>(i)] < n_experts)
        ++want[static_cast<size_t>(ids[static_cast<size_t>(i)])];
    }
    EXPECT_EQ(count(ids, top_k, n_experts, n_valid,
                    std::vector<int32_t>(static_cast<size_t>(n_experts), 0)),
              want)
        << "n_valid " << n_valid;
  }
}

TEST(CpuExpertCountDeathTest, RejectsWrongDtypes) {
  CpuBackend cpu;
  std::vector<float> ids(4);
  std::vector<int32_t> counts(4);
  EXPECT_DEATH(cpu.count_experts(Tensor::view(ids.data(), DType::kF32, {2, 2}), Tensor{},
                                 Tensor::view(counts.data(), DType::kI32, {4})),
               "topk_ids must be I32");
}

}  // namespace
}  // namespace msi

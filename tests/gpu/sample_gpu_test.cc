// CudaBackend::sample_rows against the CPU oracle (backend/cpu/sample.cc) on the same rows and
// params: token ids must be equal. The two differ in how they sum probabilities (GPU: fp32 expf,
// exact fixed-point sums; CPU: glibc expf, fp64 sums; see backend/cuda/sample.cuh), so a row may
// differ only where u · mass or top_p · mass lies on a cumulative boundary. Such a mismatch is
// accepted only if the CPU, rerun with u or top_p moved by 1e-5 relative, gives the GPU's token,
// and at most 1e-3 of the rows may need it. ids sit between guard regions.
// Skips (GTEST_SKIP) when there is no CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/registry.h"

namespace msi {
namespace {

constexpr int64_t kGuard = 64;           // ids of guard on each side
constexpr int32_t kGuardId = -123456789;
constexpr double kBoundaryRel = 1e-5;   // how close to a boundary an accepted mismatch must be
constexpr double kMaxMismatchFraction = 1e-3;

constexpr int64_t kQwen3Vocab = 151936;

struct Stats {
  int64_t rows = 0, mismatches = 0, explained = 0;
};

class SampleGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_backend("cuda:0");
    if (!gpu.is_ok()) GTEST_SKIP() << "no CUDA device: " << gpu.status().to_string();
    gpu_ = std::move(gpu).value();
    auto cpu = make_backend("cpu");
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    cpu_ = std::move(cpu).value();
  }

  // Row kinds: smooth, bf16-rounded (some ties), integer-valued (many ties), three levels (huge
  // tie groups at every cut), and a row with NaN / ±inf.
  std::vector<float> make_logits(int64_t n, int64_t vocab) {
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> kind_dist(0, 9), level(0, 2);
    std::uniform_int_distribution<int64_t> any_id(0, vocab - 1);
    for (int64_t i = 0; i < n; ++i) {
      float* row = logits.data() + i * vocab;
      const int kind = kind_dist(rng_);
      for (int64_t j = 0; j < vocab; ++j) {
        const float z = normal(rng_);
        switch (kind) {
          case 0: case 1: case 2: case 3: row[j] = 2.5f * z; break;
          case 4: case 5: row[j] = bf16_round(4.0f * z); break;
          case 6: case 7: row[j] = std::round(1.5f * z); break;
          case 8: row[j] = static_cast<float>(level(rng_)); break;
          default: row[j] = 0.5f * z; break;
        }
      }
      if (kind == 9) {
        for (int m = 0; m < 5; ++m) row[any_id(rng_)] = std::numeric_limits<float>::quiet_NaN();
        row[any_id(rng_)] = -std::numeric_limits<float>::infinity();
        if (vocab > 100 && i % 2 == 0) row[any_id(rng_)] = std::numeric_limits<float>::infinity();
      }
    }
    return logits;
  }

  // Mixed per-row params: some greedy rows, temperatures 0.3–2, the brief's top_k and top_p sets.
  std::vector<float> make_params(int64_t n) {
    static const float kTopK[] = {-1.0f, 1.0f, 5.0f, 50.0f, 1000.0f};
    static const float kTopP[] = {1.0f, 0.9f, 0.5f, 0.01f};
    std::uniform_real_distribution<float> temp(0.3f, 2.0f), unit(0.0f, 1.0f);
    std::uniform_int_distribution<int> pick_k(0, 4), pick_p(0, 3), greedy(0, 6);
    std::vector<float> params;
    for (int64_t i = 0; i < n; ++i) {
      const float t = greedy(rng_) == 0 ? 0.0f : temp(rng_);
      params.insert(params.end(), {t, kTopP[pick_p(rng_)], kTopK[pick_k(rng_)], unit(rng_)});
    }
    return params;
  }

  static float bf16_round(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    b = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(&x, &b, 4);
    return x;
  }

  std::vector<int32_t> cpu_sample(const std::vector<float>& logits, int64_t vocab,
                                  std::vector<float> params) {
    const int64_t n = static_cast<int64_t>(params.size() / 4);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    cpu_->sample_rows(Tensor::view(const_cast<float*>(logits.data()), DType::kF32, {n, vocab}),
                      Tensor::view(params.data(), DType::kF32, {n, 4}),
                      Tensor::view(ids.data(), DType::kI32, {n}));
    return ids;
  }

  // Device buffers for one shape; ids live between guards.
  struct Device {
    OwnedTensor logits, params, ids_buf;
    Tensor ids;
  };
  Device upload(const std::vector<float>& logits, int64_t vocab, const std::vector<float>& params) {
    const int64_t n = static_cast<int64_t>(params.size() / 4);
    Device d;
    d.logits = gpu_->alloc(DType::kF32, {n, vocab});
    gpu_->copy_from_host(d.logits.tensor, logits.data(), logits.size() * sizeof(float));
    d.params = gpu_->alloc(DType::kF32, {n, 4});
    gpu_->copy_from_host(d.params.tensor, params.data(), params.size() * sizeof(float));
    d.ids_buf = gpu_->alloc(DType::kI32, {n + 2 * kGuard});
    const std::vector<int32_t> guarded(static_cast<size_t>(n + 2 * kGuard), kGuardId);
    gpu_->copy_from_host(d.ids_buf.tensor, guarded.data(), guarded.size() * sizeof(int32_t));
    d.ids = Tensor::view(d.ids_buf.tensor.as<int32_t>() + kGuard, DType::kI32, {n});
    return d;
  }

  std::vector<int32_t> read_ids(const Device& d, const std::string& what) {
    const int64_t n = d.ids.numel();
    std::vector<int32_t> all(static_cast<size_t>(n + 2 * kGuard));
    gpu_->copy_to_host(all.data(), d.ids_buf.tensor, all.size() * sizeof(int32_t));
    bool intact = true;
    for (int64_t i = 0; i < kGuard; ++i) {
      intact = intact && all[i] == kGuardId && all[all.size() - 1 - i] == kGuardId;
    }
    EXPECT_TRUE(intact) << what << ": a guard region around ids was overwritten";
    return {all.begin() + kGuard, all.end() - kGuard};
  }

  // Compares GPU ids with the CPU's, row by row; a mismatch counts as explained when moving u or
  // top_p by kBoundaryRel relative makes the CPU agree with the GPU.
  void compare(const std::vector<float>& logits, int64_t vocab, const std::vector<float>& params,
               const std::vector<int32_t>& gpu_ids, const std::string& what, Stats* stats) {
    const std::vector<int32_t> cpu_ids = cpu_sample(logits, vocab, params);
    const int64_t n = static_cast<int64_t>(cpu_ids.size());
    for (int64_t i = 0; i < n; ++i) {
      ++stats->rows;
      ASSERT_GE(gpu_ids[i], 0) << what << " row " << i;
      ASSERT_LT(gpu_ids[i], vocab) << what << " row " << i;
      if (gpu_ids[i] == cpu_ids[i]) continue;
      ++stats->mismatches;
      const std::vector<float> row_logits(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
      const float* p = params.data() + 4 * i;
      bool explained = false;
      for (int field : {1, 3}) {  // top_p, u
        if (field == 1 && !(p[1] < 1.0f)) continue;  // top_p is off: nothing to move
        for (double s : {-kBoundaryRel, kBoundaryRel}) {
          std::vector<float> moved(p, p + 4);
          moved[field] = static_cast<float>(std::min(moved[field] * (1.0 + s), 0.99999994));
          explained = explained || cpu_sample(row_logits, vocab, moved)[0] == gpu_ids[i];
        }
      }
      std::printf("%s row %lld: gpu %d cpu %d (t=%g top_p=%g top_k=%g u=%.9g)%s\n", what.c_str(),
                  static_cast<long long>(i), gpu_ids[i], cpu_ids[i], p[0], p[1], p[2], p[3],
                  explained ? " — on a boundary" : "");
      EXPECT_TRUE(explained) << what << " row " << i << ": a mismatch away from any boundary";
      stats->explained += explained;
    }
  }

  void check_shape(int64_t n, int64_t vocab, Stats* stats) {
    const std::vector<float> logits = make_logits(n, vocab);
    const std::vector<float> params = make_params(n);
    Device d = upload(logits, vocab, params);
    gpu_->sample_rows(d.logits.tensor, d.params.tensor, d.ids);
    const std::string what = "n=" + std::to_string(n) + " vocab=" + std::to_string(vocab);
    compare(logits, vocab, params, read_ids(d, what), what, stats);
  }

  std::mt19937 rng_{20261122};
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<Backend> gpu_;
};

TEST_F(SampleGpuTest, MatchesCpuOnRandomRows) {
  Stats stats;
  for (auto [n, vocab] : std::vector<std::pair<int64_t, int64_t>>{
           {256, kQwen3Vocab}, {1, kQwen3Vocab}, {37, 128256}, {16, 129280}, {64, 1000},
           {200, 4099},  // vocab % 4 != 0: unaligned rows take the scalar path
           {128, 7}, {8, 1}, {3, 2049}}) {
    check_shape(n, vocab, &stats);
  }
  std::printf("sample_rows: %lld rows, %lld mismatches (%lld on a boundary)\n",
              static_cast<long long>(stats.rows), static_cast<long long>(stats.mismatches),
              static_cast<long long>(stats.explained));
  EXPECT_LE(static_cast<double>(stats.mismatches), kMaxMismatchFraction * stats.rows);
}

TEST_F(SampleGpuTest, EveryBatchSizeUpTo256) {
  Stats stats;
  for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 15, 31, 32, 63, 100, 127, 128, 131, 200, 255, 256}) {
    check_shape(n, 3000, &stats);
  }
  EXPECT_LE(static_cast<double>(stats.mismatches), kMaxMismatchFraction * stats.rows + 1e-9);
}

// Captured once, replayed with new params uploaded between replays (the graph holds pointers).
TEST_F(SampleGpuTest, GraphReplayMatchesCpu) {
  const int64_t n = 64, vocab = 32000;
  const std::vector<float> logits = make_logits(n, vocab);
  std::vector<float> params = make_params(n);
  Device d = upload(logits, vocab, params);
  auto graph = gpu_->capture([&] { gpu_->sample_rows(d.logits.tensor, d.params.tensor, d.ids); });
  ASSERT_NE(graph, nullptr);
  Stats stats;
  for (int replay = 0; replay < 3; ++replay) {
    params = make_params(n);
    gpu_->copy_from_host(d.params.tensor, params.data(), params.size() * sizeof(float));
    graph->launch();
    compare(logits, vocab, params, read_ids(d, "graph"), "graph", &stats);
  }
  EXPECT_LE(static_cast<double>(stats.mismatches), kMaxMismatchFraction * stats.rows + 1e-9);
}

// Timing for a decode batch of 256 on the Qwen3 vocab, by parameter mix (printed, not asserted).
TEST_F(SampleGpuTest, TimingBatch256Vocab151936) {
  const int64_t n = 256, vocab = kQwen3Vocab;
  std::vector<float> logits(static_cast<size_t>(n * vocab));
  std::normal_distribution<float> normal(0.0f, 2.5f);
  for (float& x : logits) x = normal(rng_);
  struct Mix {
    const char* name;
    float t, top_p, top_k;  // t < 0: the mixed random params
  };
  const Mix mixes[] = {{"greedy", 0.0f, 1.0f, -1.0f},       {"t=1", 1.0f, 1.0f, -1.0f},
                       {"top_k=50", 1.0f, 1.0f, 50.0f},     {"top_p=0.9", 1.0f, 0.9f, -1.0f},
                       {"top_k=50,top_p=0.9", 0.7f, 0.9f, 50.0f}, {"mixed", -1.0f, 0.0f, 0.0f}};
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const double hbm_floor_ms = static_cast<double>(n * vocab * 4) / 3.35e12 * 1e3;
  for (const Mix& m : mixes) {
    std::vector<float> params;
    if (m.t < 0.0f) {
      params = make_params(n);
    } else {
      for (int64_t i = 0; i < n; ++i) params.insert(params.end(), {m.t, m.top_p, m.top_k, unit(rng_)});
    }
    Device d = upload(logits, vocab, params);
    for (int i = 0; i < 3; ++i) gpu_->sample_rows(d.logits.tensor, d.params.tensor, d.ids);
    constexpr int kIters = 20;
    auto clock = gpu_->make_clock(kIters + 1);
    clock->record(0);
    for (int i = 0; i < kIters; ++i) {
      gpu_->sample_rows(d.logits.tensor, d.params.tensor, d.ids);
      clock->record(i + 1);
    }
    std::vector<double> ms;
    for (int i = 0; i < kIters; ++i) ms.push_back(clock->elapsed_ms(i, i + 1));
    std::sort(ms.begin(), ms.end());
    std::printf("sample_rows n=%lld vocab=%lld %-20s median %.3f ms  min %.3f  max %.3f  "
                "(one read of the logits at 3.35 TB/s: %.3f ms)\n",
                static_cast<long long>(n), static_cast<long long>(vocab), m.name, ms[kIters / 2],
                ms.front(), ms.back(), hbm_floor_ms);
    Stats stats;
    compare(logits, vocab, params, read_ids(d, m.name), m.name, &stats);
  }
}

}  // namespace
}  // namespace msi

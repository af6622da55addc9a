// CudaBackend's grouped MoE ops against the CPU backend (the oracle), in the style of
// backend_ops_gpu_test.cc: the same bf16-rounded inputs on both, outputs compared by
// NMSE = Σ(gpu−cpu)² / Σcpu² against a per-op threshold, any NaN fails, and every GPU tensor sits
// between guard regions that must come back untouched. moe_align must match exactly (every field
// but the backend-defined tile list, which is checked against its documented encoding instead)
// and be identical run to run. Skips (GTEST_SKIP) when there is no CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "core/dtype.h"

namespace msi {
namespace {

// NMSE thresholds, one line of reason each. One bf16 rounding of an O(1) value has a relative
// RMS error of ≈ 1.6e-3, i.e. NMSE ≈ 2.6e-6.
constexpr double kNmseGemmBf16 = 5e-5;  // fp32-accumulated grouped GEMM, one bf16 output rounding
constexpr double kNmseCombine = 5e-5;   // fp32 sum of bf16 rows, one rounding when added to out
constexpr double kNmseChain = 3e-4;     // act, y and out each rounded to bf16 along the chain

constexpr int64_t kGuard = 256;  // elements of guard on each side
constexpr unsigned char kGuardByte = 0xA5;

struct Pair {
  OwnedTensor cpu;
  OwnedTensor gpu_buf;  // [kGuard + numel + kGuard] elements
  Tensor gpu;           // the view inside the guards
};

Tensor make_view(void* data, DType dtype, const std::vector<int64_t>& shape) {
  Tensor t;
  t.data = data;
  t.dtype = dtype;
  for (int64_t d : shape) t.shape[t.ndim++] = d;
  return t;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Cheap counter-based uniform values in [-a, a] (the real-dim weights have ~10⁸ elements).
std::vector<float> uniform(int64_t n, float a, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    v[static_cast<size_t>(i)] = a * (2.0f * static_cast<float>(z >> 40) * 0x1p-24f - 1.0f);
  }
  return v;
}

struct Case {
  int64_t n, top_k, n_experts, hidden, inter;
  bool skewed;      // every pair routed to expert 1 (duplicates within a token included)
  int64_t placed;   // experts placed here (0: all), in a permuted slot order
  int hot_pct = 0;  // else: this share of pairs (in %) goes to expert 1, the rest as usual
  int replicas = 0;  // > 0: expert e has 1 + e % replicas replicas; this worker is replica e % that
  std::string name() const {
    return "n=" + std::to_string(n) + " top_k=" + std::to_string(top_k) +
           " E=" + std::to_string(n_experts) + " H=" + std::to_string(hidden) +
           " I=" + std::to_string(inter) + (skewed ? " skewed" : "") +
           (placed ? " placed=" + std::to_string(placed) : "") +
           (hot_pct ? " hot=" + std::to_string(hot_pct) + "%" : "") +
           (replicas ? " replicas=" + std::to_string(replicas) : "");
  }
};

class MoeOpsGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_backend("cuda:0");
    if (!gpu.is_ok()) GTEST_SKIP() << "no CUDA device: " << gpu.status().to_string();
    gpu_ = std::move(gpu).value();
    auto cpu = make_backend("cpu");
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    cpu_ = std::move(cpu).value();
  }

  // F32/BF16 values: F32 on the CPU (bf16-rounded first when the GPU side is bf16).
  Pair make(DType gpu_dtype, const std::vector<int64_t>& shape, std::vector<float> values) {
    const int64_t n = numel_of(shape);
    EXPECT_EQ(static_cast<int64_t>(values.size()), n);
    const size_t es = dtype_size(gpu_dtype);
    std::vector<unsigned char> bytes(static_cast<size_t>(n + 2 * kGuard) * es, kGuardByte);
    unsigned char* interior = bytes.data() + kGuard * es;
    for (int64_t i = 0; i < n; ++i) {
      float& x = values[static_cast<size_t>(i)];
      if (gpu_dtype == DType::kBF16) {
        const uint16_t h = f32_to_bf16(x);
        x = bf16_to_f32(h);
        std::memcpy(interior + i * es, &h, es);
      } else {
        std::memcpy(interior + i * es, &x, es);
      }
    }
    Pair p;
    p.cpu = cpu_->alloc(DType::kF32, {std::max<int64_t>(n, 1)});
    p.cpu.tensor = make_view(p.cpu.tensor.data, DType::kF32, shape);
    cpu_->copy_from_host(p.cpu.tensor, values.data(), values.size() * sizeof(float));
    upload_guarded(p, gpu_dtype, shape, bytes);
    return p;
  }

  Pair make_i32(const std::vector<int64_t>& shape, const std::vector<int32_t>& values) {
    const int64_t n = numel_of(shape);
    EXPECT_EQ(static_cast<int64_t>(values.size()), n);
    Pair p;
    p.cpu = cpu_->alloc(DType::kI32, {std::max<int64_t>(n, 1)});
    p.cpu.tensor = make_view(p.cpu.tensor.data, DType::kI32, shape);
    cpu_->copy_from_host(p.cpu.tensor, values.data(), values.size() * sizeof(int32_t));
    std::vector<unsigned char> bytes(static_cast<size_t>(n + 2 * kGuard) * 4, kGuardByte);
    if (n > 0) std::memcpy(bytes.data() + kGuard * 4, values.data(), values.size() * 4);
    upload_guarded(p, DType::kI32, shape, bytes);
    return p;
  }

  void upload_guarded(Pair& p, DType dtype, const std::vector<int64_t>& shape,
                      const std::vector<unsigned char>& bytes) {
    const int64_t n = numel_of(shape);
    p.gpu_buf = gpu_->alloc(dtype, {n + 2 * kGuard});
    gpu_->copy_from_host(p.gpu_buf.tensor, bytes.data(), bytes.size());
    p.gpu = make_view(static_cast<char*>(p.gpu_buf.tensor.data) + kGuard * dtype_size(dtype), dtype,
                      shape);
  }

  // As doubles (exact for i32, f32 and bf16).
  std::vector<double> read_cpu(const Pair& p) {
    const Tensor& t = p.cpu.tensor;
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      v[i] = t.dtype == DType::kI32 ? t.as<int32_t>()[i] : t.as<float>()[i];
    }
    return v;
  }

  std::vector<double> read_gpu(const Pair& p, const std::string& what) {
    const size_t es = dtype_size(p.gpu.dtype);
    const int64_t n = p.gpu.numel();
    std::vector<unsigned char> bytes(static_cast<size_t>(n + 2 * kGuard) * es);
    gpu_->copy_to_host(bytes.data(), p.gpu_buf.tensor, bytes.size());
    const size_t guard_bytes = kGuard * es;
    bool intact = true;
    for (size_t i = 0; i < guard_bytes; ++i) {
      intact = intact && bytes[i] == kGuardByte && bytes[bytes.size() - 1 - i] == kGuardByte;
    }
    EXPECT_TRUE(intact) << what << ": a guard region was overwritten";
    std::vector<double> v(static_cast<size_t>(n));
    const unsigned char* in = bytes.data() + guard_bytes;
    for (int64_t i = 0; i < n; ++i) {
      if (p.gpu.dtype == DType::kBF16) {
        uint16_t h;
        std::memcpy(&h, in + i * es, 2);
        v[static_cast<size_t>(i)] = bf16_to_f32(h);
      } else if (p.gpu.dtype == DType::kI32) {
        int32_t x;
        std::memcpy(&x, in + i * es, 4);
        v[static_cast<size_t>(i)] = x;
      } else {
        float x;
        std::memcpy(&x, in + i * es, 4);
        v[static_cast<size_t>(i)] = x;
      }
    }
    return v;
  }

  void expect_close(const Pair& p, double threshold, const std::string& what) {
    const std::vector<double> want = read_cpu(p), got = read_gpu(p, what);
    ASSERT_EQ(got.size(), want.size());
    double diff_sq = 0.0, ref_sq = 0.0;
    bool nan = false;
    for (size_t i = 0; i < got.size(); ++i) {
      nan = nan || std::isnan(got[i]) || std::isnan(want[i]);
      diff_sq += (got[i] - want[i]) * (got[i] - want[i]);
      ref_sq += want[i] * want[i];
    }
    EXPECT_FALSE(nan) << what << ": NaN in the output";
    const double nmse = ref_sq > 0.0 ? diff_sq / ref_sq : diff_sq;
    EXPECT_LE(nmse, threshold) << what << ": NMSE " << nmse;
  }

  void expect_equal(const Pair& p, const std::string& what) {
    const std::vector<double> want = read_cpu(p), got = read_gpu(p, what);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << what << ": element " << i;
  }

  void run_case(const Case& c);

  std::mt19937 rng_{4321};
  uint64_t seed_ = 1;
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<Backend> gpu_;
};

void MoeOpsGpuTest::run_case(const Case& c) {
  const std::string what = c.name();
  const int64_t n = c.n, top_k = c.top_k, H = c.hidden, I = c.inter, R = n * top_k;
  const int64_t rows = std::max<int64_t>(R, 1);

  // Routing: distinct experts per token, or everything on expert 1.
  std::vector<int32_t> ids, perm(static_cast<size_t>(c.n_experts));
  std::vector<float> weights;
  std::iota(perm.begin(), perm.end(), 0);
  std::uniform_real_distribution<float> wdist(0.05f, 1.0f);
  std::uniform_int_distribution<int> pct(0, 99);
  for (int64_t t = 0; t < n; ++t) {
    std::shuffle(perm.begin(), perm.end(), rng_);
    for (int64_t j = 0; j < top_k; ++j) {
      const bool hot = c.skewed || pct(rng_) < c.hot_pct;
      ids.push_back(hot ? 1 : perm[static_cast<size_t>(j)]);
      weights.push_back(wdist(rng_));
    }
  }
  // Slots: all experts in order, or `placed` of them in a shuffled order (the rest are −1).
  std::vector<int32_t> slot_of(static_cast<size_t>(c.n_experts), -1);
  int64_t n_slots = c.n_experts;
  if (c.placed > 0) {
    std::vector<int32_t> experts(perm);
    std::shuffle(experts.begin(), experts.end(), rng_);
    for (int64_t s = 0; s < c.placed; ++s) slot_of[static_cast<size_t>(experts[s])] = s;
    n_slots = c.placed;
  } else {
    std::iota(slot_of.begin(), slot_of.end(), 0);
  }

  Pair ids_t = make_i32({n, top_k}, ids);
  Pair w_t = make(DType::kF32, {n, top_k}, weights);
  Pair slot_t = make_i32({c.n_experts}, slot_of);
  // Layout outputs start with the same poison on both sides: rows neither writes must agree.
  Pair off_t = make_i32({n_slots + 1}, std::vector<int32_t>(static_cast<size_t>(n_slots + 1), -7));
  Pair row_token_t = make_i32({rows}, std::vector<int32_t>(static_cast<size_t>(rows), -7));
  Pair row_gate_t = make(DType::kF32, {rows}, std::vector<float>(static_cast<size_t>(rows), -7.0f));
  Pair token_rows_t =
      make_i32({std::max<int64_t>(n, 1), top_k},
               std::vector<int32_t>(static_cast<size_t>(std::max<int64_t>(n, 1) * top_k), -7));
  const int64_t tiles_n = moe_tile_capacity(rows, n_slots);
  Pair tiles_t = make_i32({tiles_n}, std::vector<int32_t>(static_cast<size_t>(tiles_n), -7));
  std::vector<int32_t> replica_table(static_cast<size_t>(2 * c.n_experts));
  for (int64_t e = 0; e < c.n_experts; ++e) {
    const int32_t r = c.replicas > 0 ? static_cast<int32_t>(1 + e % c.replicas) : 1;
    replica_table[static_cast<size_t>(2 * e)] = r;
    replica_table[static_cast<size_t>(2 * e + 1)] = static_cast<int32_t>(e % r);
  }
  Pair replica_t = make_i32({c.n_experts, 2}, replica_table);
  auto layout_of = [&](bool gpu) {
    MoeLayout l;
    l.n_slots = n_slots;
    auto pick = [gpu](const Pair& p) { return gpu ? p.gpu : p.cpu.tensor; };
    l.slot_of_expert = pick(slot_t);
    l.expert_offsets = pick(off_t);
    l.row_token = pick(row_token_t);
    l.row_gate = pick(row_gate_t);
    l.token_rows = pick(token_rows_t);
    l.tiles = pick(tiles_t);
    if (c.replicas > 0) l.expert_replica = pick(replica_t);
    return l;
  };
  const MoeLayout cl = layout_of(false), gl = layout_of(true);

  // ---- align: exact, and the same on a second run ----
  cpu_->moe_align(ids_t.cpu.tensor, w_t.cpu.tensor, cl);
  gpu_->moe_align(ids_t.gpu, w_t.gpu, gl);
  expect_equal(off_t, what + " expert_offsets");
  expect_equal(row_token_t, what + " row_token");
  expect_equal(row_gate_t, what + " row_gate");
  expect_equal(token_rows_t, what + " token_rows");
  const std::vector<double> first = read_gpu(row_token_t, what);
  const std::vector<double> first_tiles = read_gpu(tiles_t, what + " tiles");
  gpu_->moe_align(ids_t.gpu, w_t.gpu, gl);
  EXPECT_EQ(read_gpu(row_token_t, what), first) << what << ": align is not deterministic";
  EXPECT_EQ(read_gpu(tiles_t, what + " tiles"), first_tiles) << what << ": tiles differ";
  // Tiles: [n_tiles, rows, (slot, first row)...], each slot's rows in 64-row steps, in order.
  const std::vector<double> off = read_cpu(off_t);
  std::vector<double> want_tiles = {0, off[static_cast<size_t>(n_slots)]};
  for (int64_t s = 0; s < n_slots; ++s) {
    for (double r = off[static_cast<size_t>(s)]; r < off[static_cast<size_t>(s + 1)];
         r += kMoeTileRows) {
      want_tiles.push_back(static_cast<double>(s));
      want_tiles.push_back(r);
      want_tiles[0] += 1;
    }
  }
  ASSERT_LE(want_tiles.size(), first_tiles.size());
  for (size_t i = 0; i < want_tiles.size(); ++i) {
    ASSERT_EQ(first_tiles[i], want_tiles[i]) << what << ": tiles[" << i << "]";
  }

  // ---- gate_up, down and combine, each on its own exact inputs ----
  const float w13_scale = std::sqrt(3.0f / static_cast<float>(H));
  const float w2_scale = std::sqrt(3.0f / static_cast<float>(I));
  Pair x = make(DType::kBF16, {n, H}, uniform(n * H, 1.7f, seed_++));
  Pair w13 =
      make(DType::kBF16, {n_slots, 2 * I, H}, uniform(n_slots * 2 * I * H, w13_scale, seed_++));
  Pair w2 = make(DType::kBF16, {n_slots, H, I}, uniform(n_slots * H * I, w2_scale, seed_++));
  Pair act = make(DType::kBF16, {rows, I}, std::vector<float>(static_cast<size_t>(rows * I), 0.0f));
  cpu_->moe_gate_up(x.cpu.tensor, w13.cpu.tensor, cl, act.cpu.tensor);
  gpu_->moe_gate_up(x.gpu, w13.gpu, gl, act.gpu);
  expect_close(act, kNmseGemmBf16, what + " gate_up act");

  Pair act_in = make(DType::kBF16, {rows, I}, uniform(rows * I, 1.0f, seed_++));
  Pair y = make(DType::kBF16, {rows, H}, std::vector<float>(static_cast<size_t>(rows * H), 0.0f));
  cpu_->moe_down(act_in.cpu.tensor, w2.cpu.tensor, cl, y.cpu.tensor);
  gpu_->moe_down(act_in.gpu, w2.gpu, gl, y.gpu);
  expect_close(y, kNmseGemmBf16, what + " down y");

  Pair y_in = make(DType::kBF16, {rows, H}, uniform(rows * H, 1.0f, seed_++));
  Pair out = make(DType::kBF16, {n, H}, uniform(n * H, 1.0f, seed_++));
  cpu_->moe_combine(y_in.cpu.tensor, cl, out.cpu.tensor);
  gpu_->moe_combine(y_in.gpu, gl, out.gpu);
  expect_close(out, kNmseCombine, what + " combine out");

  // ---- the chain, as a layer runs it ----
  Pair chain_out = make(DType::kBF16, {n, H}, uniform(n * H, 0.5f, seed_++));
  for (Backend* b : {cpu_.get(), gpu_.get()}) {
    const bool g = b == gpu_.get();
    const MoeLayout& l = g ? gl : cl;
    auto pick = [g](const Pair& p) { return g ? p.gpu : p.cpu.tensor; };
    b->moe_align(pick(ids_t), pick(w_t), l);
    b->moe_gate_up(pick(x), pick(w13), l, pick(act));
    b->moe_down(pick(act), pick(w2), l, pick(y));
    b->moe_combine(pick(y), l, pick(chain_out));
  }
  expect_close(chain_out, kNmseChain, what + " chain out");
  (void)read_gpu(tiles_t, what + " tiles");  // guards only
}

TEST_F(MoeOpsGpuTest, TinyDims) {
  for (const Case& c : std::vector<Case>{
           {1, 1, 4, 64, 32, false, 0},
           {1, 8, 16, 96, 48, false, 0},
           {7, 2, 8, 96, 48, false, 5},
           {5, 2, 4, 80, 16, false, 0},  // hidden % 32 != 0: the 16-column down blocks
           {64, 8, 32, 128, 256, false, 0},
           {256, 2, 8, 64, 48, true, 0},  // every pair on one expert: 8 full tiles, 7 empty slots
           {256, 8, 128, 64, 32, false, 40},
           {1000, 2, 8, 128, 256, false, 0},  // full tiles: the wide column blocks
           {1000, 8, 128, 64, 32, false, 0},
           {0, 2, 4, 64, 32, false, 0},
           {64, 8, 32, 128, 256, false, 0, 0, 3},  // replicated experts keep their share of tokens
           {1000, 2, 8, 128, 256, false, 5, 0, 2},
       }) {
    run_case(c);
    if (HasFatalFailure()) return;
  }
}

TEST_F(MoeOpsGpuTest, Qwen3MoeDims) {
  // Qwen3-30B-A3B: hidden 2048, moe_intermediate 768, 128 experts, top 8 (32 placed here, so the
  // CPU oracle stays quick; the skipped pairs exercise partial placement at real size).
  for (int64_t n : {1, 7, 64, 256}) {
    run_case({n, 8, 128, 2048, 768, false, 32});
    if (HasFatalFailure()) return;
  }
  // All 128 experts at 256 tokens: more tiles × column blocks in moe_down than one grid holds,
  // so its blocks stride over the tiles; then a prefill-sized batch (wide column blocks).
  run_case({256, 8, 128, 2048, 768, false, 0});
  if (HasFatalFailure()) return;
  run_case({1000, 8, 128, 2048, 768, false, 64});
}

TEST_F(MoeOpsGpuTest, MixtralDims) {
  // Mixtral-8x7B: hidden 4096, intermediate 14336, 8 experts, top 2 (4 placed here).
  for (int64_t n : {1, 64}) {
    run_case({n, 2, 8, 4096, 14336, false, 4});
    if (HasFatalFailure()) return;
  }
}

// Prefill-sized batches: ≥ 128 rows per slot on average (host bound), so gate_up and down take
// the large-M path (128-row blocks over pairs of list tiles, 256 weight rows per block).
TEST_F(MoeOpsGpuTest, LargeBatchTinyDims) {
  for (const Case& c : std::vector<Case>{
           {1000, 2, 8, 256, 128, false, 0},       // odd slot sizes: partial 128- and 64-row ends
           {2048, 2, 8, 256, 128, true, 0},        // every pair on one expert: 32 blocks, 7 empty
           {2048, 4, 16, 512, 384, false, 0, 70},  // one hot expert, the rest thin (some < 64)
           {1500, 4, 16, 256, 256, false, 10},     // skipped pairs (−1 slots)
           {4096, 1, 4, 272, 256, false, 0},       // gate_up K = 272: a partial last K slice
           {4096, 1, 4, 256, 144, false, 0},       // down K = 144 (gate_up falls back: 144 % 128)
       }) {
    run_case(c);
    if (HasFatalFailure()) return;
  }
}

TEST_F(MoeOpsGpuTest, LargeBatchRealDims) {
  // Qwen3-30B-A3B at 2048 and 4096 tokens (64 of 128 experts placed at 4096, to keep the CPU
  // oracle quick), and a hot expert taking ~60% of the pairs.
  for (const Case& c : std::vector<Case>{
           {2048, 8, 128, 2048, 768, false, 0},
           {4096, 8, 128, 2048, 768, false, 64},
           {2048, 8, 128, 2048, 768, false, 32, 60},
           // Mixtral-8x7B at 2048 (2 experts placed) and 4096 tokens (1 placed).
           {2048, 2, 8, 4096, 14336, false, 2},
           {4096, 2, 8, 4096, 14336, false, 1},
       }) {
    run_case(c);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace msi

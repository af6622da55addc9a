// Every CudaBackend op against the CPU backend (the oracle) on the same random inputs, in the
// style of ggml's test-backend-ops. Inputs are rounded to bf16 first so both backends see
// identical values; the CPU computes in fp32, the GPU in bf16 storage with fp32 math, and the
// outputs are compared by NMSE = Σ(gpu−cpu)² / Σcpu² against a per-op threshold. Any NaN fails.
// GPU tensors sit between guard regions (bytes 0xA5) that must come back untouched.
// Skips (GTEST_SKIP) when there is no CUDA device.
#include <algorithm>
#include <array>
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
constexpr double kNmseRounding = 5e-5;   // ≤ 2 bf16 output roundings (norm, rope, adds, attention)
constexpr double kNmseGemmBf16 = 5e-5;   // fp32-accumulated GEMM, one bf16 output rounding
constexpr double kNmseGemmF32 = 1e-6;    // fp32 accumulation in another order, fp32 output
constexpr double kNmseMlp = 3e-4;        // gate, up, silu, act and output each rounded to bf16
constexpr double kNmseRouter = 1e-10;    // same fp32 formula, expf within 2 ulp of glibc's

constexpr int64_t kGuard = 256;            // elements of guard on each side
constexpr unsigned char kGuardByte = 0xA5;

// A tensor on both backends: F32 (or I32) on the CPU, `dtype` on the GPU between guards.
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

std::vector<float> round_bf16(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

class BackendOpsGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_backend("cuda:0");
    if (!gpu.is_ok()) GTEST_SKIP() << "no CUDA device: " << gpu.status().to_string();
    gpu_ = std::move(gpu).value();
    auto cpu = make_backend("cpu");
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    cpu_ = std::move(cpu).value();
  }

  std::vector<float> randn(int64_t n, float stddev = 1.0f) {
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng_);
    return v;
  }

  // Values go to the CPU as F32 (bf16-rounded when the GPU tensor is bf16, so both see the same).
  Pair make(DType gpu_dtype, const std::vector<int64_t>& shape, std::vector<float> values) {
    const int64_t n = numel_of(shape);
    EXPECT_EQ(static_cast<int64_t>(values.size()), n);
    if (gpu_dtype == DType::kBF16) values = round_bf16(std::move(values));
    Pair p;
    p.cpu = cpu_->alloc(DType::kF32, {n});
    p.cpu.tensor = make_view(p.cpu.tensor.data, DType::kF32, shape);
    cpu_->copy_from_host(p.cpu.tensor, values.data(), values.size() * sizeof(float));
    const size_t es = dtype_size(gpu_dtype);
    std::vector<unsigned char> bytes(static_cast<size_t>(n + 2 * kGuard) * es, kGuardByte);
    unsigned char* interior = bytes.data() + kGuard * es;
    for (int64_t i = 0; i < n; ++i) {
      if (gpu_dtype == DType::kBF16) {
        const uint16_t h = f32_to_bf16(values[static_cast<size_t>(i)]);
        std::memcpy(interior + i * es, &h, es);
      } else {
        std::memcpy(interior + i * es, &values[static_cast<size_t>(i)], es);
      }
    }
    upload_guarded(p, gpu_dtype, shape, bytes);
    return p;
  }

  Pair make_i32(const std::vector<int64_t>& shape, const std::vector<int32_t>& values) {
    const int64_t n = numel_of(shape);
    EXPECT_EQ(static_cast<int64_t>(values.size()), n);
    Pair p;
    p.cpu = cpu_->alloc(DType::kI32, {n});
    p.cpu.tensor = make_view(p.cpu.tensor.data, DType::kI32, shape);
    cpu_->copy_from_host(p.cpu.tensor, values.data(), values.size() * sizeof(int32_t));
    std::vector<unsigned char> bytes(static_cast<size_t>(n + 2 * kGuard) * 4, kGuardByte);
    std::memcpy(bytes.data() + kGuard * 4, values.data(), values.size() * 4);
    upload_guarded(p, DType::kI32, shape, bytes);
    return p;
  }

  void upload_guarded(Pair& p, DType dtype, const std::vector<int64_t>& shape,
                      const std::vector<unsigned char>& bytes) {
    const int64_t n = numel_of(shape);
    p.gpu_buf = gpu_->alloc(dtype, {n + 2 * kGuard});
    gpu_->copy_from_host(p.gpu_buf.tensor, bytes.data(), bytes.size());
    p.gpu = make_view(static_cast<char*>(p.gpu_buf.tensor.data) + kGuard * dtype_size(dtype),
                      dtype, shape);
  }

  std::vector<float> read_cpu(const Pair& p) {
    std::vector<float> v(static_cast<size_t>(p.cpu.tensor.numel()));
    if (p.cpu.tensor.dtype == DType::kI32) {
      std::vector<int32_t> iv(v.size());
      cpu_->copy_to_host(iv.data(), p.cpu.tensor, iv.size() * 4);
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(iv[i]);
    } else {
      cpu_->copy_to_host(v.data(), p.cpu.tensor, v.size() * 4);
    }
    return v;
  }

  // The GPU tensor as float; fails the test if a guard byte changed.
  std::vector<float> read_gpu(const Pair& p, const std::string& what) {
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
    std::vector<float> v(static_cast<size_t>(n));
    const unsigned char* interior = bytes.data() + guard_bytes;
    for (int64_t i = 0; i < n; ++i) {
      if (p.gpu.dtype == DType::kBF16) {
        uint16_t h;
        std::memcpy(&h, interior + i * es, 2);
        v[static_cast<size_t>(i)] = bf16_to_f32(h);
      } else if (p.gpu.dtype == DType::kI32) {
        int32_t x;
        std::memcpy(&x, interior + i * es, 4);
        v[static_cast<size_t>(i)] = static_cast<float>(x);
      } else {
        std::memcpy(&v[static_cast<size_t>(i)], interior + i * es, 4);
      }
    }
    return v;
  }

  // NMSE of the GPU result against the CPU result; NaN anywhere fails.
  void expect_close(const Pair& p, double threshold, const std::string& what) {
    const std::vector<float> want = read_cpu(p);
    const std::vector<float> got = read_gpu(p, what);
    ASSERT_EQ(got.size(), want.size());
    double diff_sq = 0.0, ref_sq = 0.0;
    bool nan = false;
    for (size_t i = 0; i < got.size(); ++i) {
      nan = nan || std::isnan(got[i]) || std::isnan(want[i]);
      const double d = static_cast<double>(got[i]) - want[i];
      diff_sq += d * d;
      ref_sq += static_cast<double>(want[i]) * want[i];
    }
    EXPECT_FALSE(nan) << what << ": NaN in the output";
    const double nmse = ref_sq > 0.0 ? diff_sq / ref_sq : diff_sq;
    EXPECT_LE(nmse, threshold) << what << ": NMSE " << nmse;
  }

  void expect_equal(const Pair& p, const std::string& what) {
    const std::vector<float> want = read_cpu(p);
    const std::vector<float> got = read_gpu(p, what);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << what << ": element " << i;
    }
  }

  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<Backend> gpu_;
};

TEST_F(BackendOpsGpuTest, Embedding) {
  for (auto [vocab, d, n] : std::vector<std::array<int64_t, 3>>{{50, 67, 13}, {1000, 256, 1}}) {
    Pair table = make(DType::kBF16, {vocab, d}, randn(vocab * d));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
    for (auto& id : ids) id = pick(rng_);
    Pair id_t = make_i32({n}, ids);
    Pair out = make(DType::kBF16, {n, d}, std::vector<float>(static_cast<size_t>(n * d), 0.0f));
    cpu_->embedding(table.cpu.tensor, id_t.cpu.tensor, out.cpu.tensor);
    gpu_->embedding(table.gpu, id_t.gpu, out.gpu);
    expect_equal(out, "embedding");  // a row copy of bf16 values: exact
  }
}

TEST_F(BackendOpsGpuTest, RmsNorm) {
  for (auto [n, d] : std::vector<std::array<int64_t, 2>>{{1, 64}, {7, 333}, {16, 4096}}) {
    Pair x = make(DType::kBF16, {n, d}, randn(n * d, 3.0f));
    Pair w = make(DType::kBF16, {d}, randn(d));
    Pair out = make(DType::kBF16, {n, d}, std::vector<float>(static_cast<size_t>(n * d), 0.0f));
    cpu_->rms_norm(x.cpu.tensor, w.cpu.tensor, out.cpu.tensor, 1e-6f);
    gpu_->rms_norm(x.gpu, w.gpu, out.gpu, 1e-6f);
    expect_close(out, kNmseRounding, "rms_norm " + std::to_string(n) + "x" + std::to_string(d));
    // In place (the q/k-norm use).
    cpu_->rms_norm(x.cpu.tensor, w.cpu.tensor, x.cpu.tensor, 1e-6f);
    gpu_->rms_norm(x.gpu, w.gpu, x.gpu, 1e-6f);
    expect_close(x, kNmseRounding, "rms_norm in place");
  }
}

TEST_F(BackendOpsGpuTest, AddRmsNorm) {
  for (auto [n, d] : std::vector<std::array<int64_t, 2>>{{1, 64}, {5, 1000}, {33, 2048}}) {
    Pair residual = make(DType::kBF16, {n, d}, randn(n * d));
    Pair x = make(DType::kBF16, {n, d}, randn(n * d));
    Pair w = make(DType::kBF16, {d}, randn(d));
    Pair out = make(DType::kBF16, {n, d}, std::vector<float>(static_cast<size_t>(n * d), 0.0f));
    cpu_->add_rms_norm(residual.cpu.tensor, x.cpu.tensor, w.cpu.tensor, out.cpu.tensor, 1e-5f);
    gpu_->add_rms_norm(residual.gpu, x.gpu, w.gpu, out.gpu, 1e-5f);
    expect_close(residual, kNmseRounding, "add_rms_norm residual");
    expect_close(out, kNmseRounding, "add_rms_norm out");
  }
}

TEST_F(BackendOpsGpuTest, Linear) {
  struct Case {
    int64_t m, n, k;
    bool bias;
    DType out;
  };
  const std::vector<Case> cases = {
      {1, 1, 16, false, DType::kBF16},    {7, 33, 97, true, DType::kBF16},
      {64, 256, 1024, false, DType::kBF16}, {3, 129, 1024, true, DType::kBF16},
      {5, 64, 512, false, DType::kF32},   {17, 1000, 256, true, DType::kF32},
  };
  for (const Case& c : cases) {
    const std::string what = "linear m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) +
                             " k=" + std::to_string(c.k) + (c.bias ? " +bias" : "") +
                             (c.out == DType::kF32 ? " f32" : " bf16");
    Pair x = make(DType::kBF16, {c.m, c.k}, randn(c.m * c.k));
    Pair w = make(DType::kBF16, {c.n, c.k}, randn(c.n * c.k, 1.0f / std::sqrt(float(c.k))));
    Pair b = make(DType::kBF16, {c.n}, randn(c.n));
    Pair y = make(c.out, {c.m, c.n}, std::vector<float>(static_cast<size_t>(c.m * c.n), 0.0f));
    cpu_->linear(x.cpu.tensor, w.cpu.tensor, c.bias ? b.cpu.tensor : Tensor{}, y.cpu.tensor);
    gpu_->linear(x.gpu, w.gpu, c.bias ? b.gpu : Tensor{}, y.gpu);
    expect_close(y, c.out == DType::kF32 ? kNmseGemmF32 : kNmseGemmBf16, what);
  }
}

TEST_F(BackendOpsGpuTest, Rope) {
  struct Case {
    int64_t n_tokens, n_heads, head_dim;
    double theta;
  };
  for (const Case& c : std::vector<Case>{{9, 4, 64, 1e4}, {5, 2, 128, 1e6}, {1, 3, 6, 500.0}}) {
    const int64_t cols = c.n_heads * c.head_dim;
    Pair x = make(DType::kBF16, {c.n_tokens, cols}, randn(c.n_tokens * cols));
    std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
    std::uniform_int_distribution<int32_t> pick(0, 5000);
    for (auto& p : pos) p = pick(rng_);
    pos[0] = 0;
    Pair pos_t = make_i32({c.n_tokens}, pos);
    cpu_->rope(x.cpu.tensor, pos_t.cpu.tensor, c.n_heads, c.head_dim, c.theta);
    gpu_->rope(x.gpu, pos_t.gpu, c.n_heads, c.head_dim, c.theta);
    expect_close(x, kNmseRounding, "rope head_dim=" + std::to_string(c.head_dim));
  }
}

TEST_F(BackendOpsGpuTest, KvAppend) {
  const int64_t n_slots = 64, kv_dim = 96, n = 10;
  Pair k_cache = make(DType::kBF16, {n_slots, kv_dim}, randn(n_slots * kv_dim));
  Pair v_cache = make(DType::kBF16, {n_slots, kv_dim}, randn(n_slots * kv_dim));
  Pair k = make(DType::kBF16, {n, kv_dim}, randn(n * kv_dim));
  Pair v = make(DType::kBF16, {n, kv_dim}, randn(n * kv_dim));
  std::vector<int32_t> slots(static_cast<size_t>(n_slots));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng_);
  slots.resize(static_cast<size_t>(n));
  Pair slot_t = make_i32({n}, slots);
  cpu_->kv_append(k.cpu.tensor, v.cpu.tensor, k_cache.cpu.tensor, v_cache.cpu.tensor,
                  slot_t.cpu.tensor);
  gpu_->kv_append(k.gpu, v.gpu, k_cache.gpu, v_cache.gpu, slot_t.gpu);
  expect_equal(k_cache, "kv_append k_cache");
  expect_equal(v_cache, "kv_append v_cache");
}

// ---- paged attention ----
// A batch of sequences, each contributing query tokens at positions first_pos .. first_pos + n − 1
// (n = 1 at first_pos = context − 1 is a decode). Blocks are a shuffled, non-contiguous draw from
// a pool with unused junk blocks; tokens are interleaved across sequences.
struct AttnSeq {
  int32_t first_pos, n;
  int32_t repeat = 1;  // each query token appears this many times
};
struct AttnCase {
  int64_t n_heads, n_kv_heads, head_dim, block_size;
  std::vector<AttnSeq> seqs;
  float q_std = 1.0f;  // larger: peakier softmax
};

// n_seqs decodes with contexts drawn from [1, max_context] (the first is 1, the second
// max_context, so both ends are always covered).
std::vector<AttnSeq> decode_batch(std::mt19937& rng, int n_seqs, int32_t max_context) {
  std::uniform_int_distribution<int32_t> pick(1, max_context);
  std::vector<AttnSeq> seqs;
  for (int s = 0; s < n_seqs; ++s) {
    const int32_t context = s == 0 ? 1 : s == 1 ? max_context : pick(rng);
    seqs.push_back({context - 1, 1});
  }
  return seqs;
}

std::string describe(const AttnCase& c) {
  int64_t n_tokens = 0, max_pos = 0;
  for (const AttnSeq& s : c.seqs) {
    n_tokens += int64_t{s.n} * s.repeat;
    max_pos = std::max<int64_t>(max_pos, s.first_pos + s.n - 1);
  }
  return "paged_attention " + std::to_string(c.seqs.size()) + " seqs " +
         std::to_string(n_tokens) + " tokens max_pos " + std::to_string(max_pos) + " heads " +
         std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " head_dim " +
         std::to_string(c.head_dim) + " block_size " + std::to_string(c.block_size);
}

class PagedAttentionGpuTest : public BackendOpsGpuTest {
 protected:
  void check(const AttnCase& c) {
    const std::string what = describe(c);
    int64_t max_blocks = 0, total_blocks = 0;
    std::vector<int64_t> need;
    for (const AttnSeq& s : c.seqs) {
      need.push_back((s.first_pos + s.n + c.block_size - 1) / c.block_size);
      max_blocks = std::max(max_blocks, need.back());
      total_blocks += need.back();
    }
    const int64_t n_blocks = total_blocks + 7;  // unused blocks hold random junk
    std::vector<int32_t> pool(static_cast<size_t>(n_blocks));
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng_);
    std::vector<int32_t> tables(c.seqs.size() * static_cast<size_t>(max_blocks), -1);
    size_t next = 0;
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      for (int64_t b = 0; b < need[s]; ++b) tables[s * max_blocks + b] = pool[next++];
    }
    std::vector<std::pair<int32_t, int32_t>> tokens;  // (seq, pos)
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      for (int32_t i = 0; i < c.seqs[s].n * c.seqs[s].repeat; ++i) {
        tokens.emplace_back(int32_t(s), c.seqs[s].first_pos + i % c.seqs[s].n);
      }
    }
    std::shuffle(tokens.begin(), tokens.end(), rng_);
    std::vector<int32_t> token_seq, token_pos;
    for (auto [s, p] : tokens) {
      token_seq.push_back(s);
      token_pos.push_back(p);
    }
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
    const int64_t n_slots = n_blocks * c.block_size;
    Pair q = make(DType::kBF16, {n, q_dim}, randn(n * q_dim, c.q_std));
    Pair k_cache = make(DType::kBF16, {n_slots, kv_dim}, randn(n_slots * kv_dim));
    Pair v_cache = make(DType::kBF16, {n_slots, kv_dim}, randn(n_slots * kv_dim));
    Pair out = make(DType::kBF16, {n, q_dim}, std::vector<float>(static_cast<size_t>(n * q_dim), 0.0f));
    Pair seq_t = make_i32({n}, token_seq);
    Pair pos_t = make_i32({n}, token_pos);
    Pair table_t = make_i32({int64_t(c.seqs.size()), max_blocks}, tables);
    AttentionShape shape;
    shape.n_heads = c.n_heads;
    shape.n_kv_heads = c.n_kv_heads;
    shape.head_dim = c.head_dim;
    shape.block_size = c.block_size;
    shape.max_blocks_per_seq = max_blocks;
    shape.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    cpu_->paged_attention(q.cpu.tensor, k_cache.cpu.tensor, v_cache.cpu.tensor, out.cpu.tensor,
                          seq_t.cpu.tensor, pos_t.cpu.tensor, table_t.cpu.tensor, shape);
    gpu_->paged_attention(q.gpu, k_cache.gpu, v_cache.gpu, out.gpu, seq_t.gpu, pos_t.gpu,
                          table_t.gpu, shape);
    // fp32 softmax and accumulation on both sides; the GPU rounds P to bf16 for the PV MMA
    // (relative RMS 2⁻⁹/√3 per weight, NMSE ≈ 1e-6) and the output once.
    expect_close(out, kNmseRounding, what);
    (void)read_gpu(q, what + " q");  // guards only: inputs stay untouched
  }
};

// Several sequences in one batch: a full prefill, a decode, a prefill chunk, a first token;
// head_dim 80 runs padded to the 128 kernel.
TEST_F(PagedAttentionGpuTest, MixedBatch) {
  const std::vector<AttnSeq> seqs = {{0, 37}, {100, 1}, {20, 10}, {0, 1}, {250, 3}};
  check({8, 2, 64, 16, seqs});
  check({16, 4, 128, 8, seqs});
  check({4, 4, 80, 16, seqs});
}

// Decode batches. The split planner (attention.cu) splits contexts only while n_tokens *
// n_kv_heads is at most half the SMs (66 on an H100): the batches of ≤ 33 tokens × ≤ 2 kv heads
// take the split path (partials merged by the second kernel; context-1 tokens written
// directly), the others the direct one.
TEST_F(PagedAttentionGpuTest, Decode) {
  check({32, 8, 128, 16, decode_batch(rng_, 1, 5000)});         // Mixtral shape, group 4
  check({32, 8, 128, 16, {{0, 1}}});                             // a first token
  check({16, 2, 128, 16, decode_batch(rng_, 33, 5000)});        // group 8
  check({8, 2, 16, 1, decode_batch(rng_, 33, 5000)});           // head_dim 16, block_size 1
  check({4, 4, 32, 1, decode_batch(rng_, 33, 3000)});           // group 1, no split
  check({2, 2, 128, 1, decode_batch(rng_, 33, 3000)});          // group 1, head_dim 128
  check({4, 4, 64, 16, decode_batch(rng_, 256, 1200)});         // no split
  check({16, 2, 32, 16, decode_batch(rng_, 256, 2000)});        // group 8, no split
  check({16, 1, 32, 1, decode_batch(rng_, 256, 1000)});         // group 16, no split
  check({16, 1, 32, 1, decode_batch(rng_, 33, 3000)});          // group 16, splits
  check({8, 1, 64, 16, decode_batch(rng_, 3, 4000)});           // group 8, few tokens
  check({4, 2, 256, 16, decode_batch(rng_, 2, 700)});           // head_dim 256
  check({4, 1, 64, 16, decode_batch(rng_, 1, 3000), 6.0f});     // peaky softmax
  check({4, 1, 64, 16, decode_batch(rng_, 1, 3000), 1e-3f});    // flat softmax
}

// Prefill chunks and decodes in one call: without splits (many tokens) and with them (few
// tokens, contexts from 1 to 4000, so one call mixes direct writes and merged splits).
TEST_F(PagedAttentionGpuTest, DecodeAndPrefill) {
  std::vector<AttnSeq> many = decode_batch(rng_, 20, 5000);
  many.push_back({200, 300});
  many.push_back({0, 100});
  check({8, 2, 64, 16, many});
  std::vector<AttnSeq> few = decode_batch(rng_, 3, 4000);
  few.push_back({1000, 20});
  check({8, 1, 128, 16, few});
  check({8, 1, 16, 1, few});
}

// One decode alone (many splits) and the same decode repeated 1024 times in one call (1024
// blocks: no split): both paths against the oracle.
TEST_F(PagedAttentionGpuTest, SplitAndDirectPaths) {
  check({2, 1, 128, 16, {{1999, 1}}});
  check({2, 1, 128, 16, {{1999, 1, 1024}}});
}

// A 2048-token prefill (each query token reads its own context) must stay correct.
TEST_F(PagedAttentionGpuTest, LongPrefill) { check({4, 1, 64, 16, {{0, 2048}}}); }

TEST_F(BackendOpsGpuTest, RouterTopk) {
  struct Case {
    int64_t n, n_experts, top_k;
    bool normalize;
  };
  for (const Case& c : std::vector<Case>{
           {1, 8, 2, true}, {37, 64, 6, false}, {19, 128, 8, true}, {4, 60, 4, true}, {3, 33, 32, false}}) {
    Pair logits = make(DType::kF32, {c.n, c.n_experts}, randn(c.n * c.n_experts, 2.0f));
    Pair ids = make_i32({c.n, c.top_k}, std::vector<int32_t>(static_cast<size_t>(c.n * c.top_k), 0));
    Pair weights = make(DType::kF32, {c.n, c.top_k}, std::vector<float>(static_cast<size_t>(c.n * c.top_k), 0.0f));
    cpu_->router_topk(logits.cpu.tensor, ids.cpu.tensor, weights.cpu.tensor, c.normalize);
    gpu_->router_topk(logits.gpu, ids.gpu, weights.gpu, c.normalize);
    const std::string what = "router_topk E=" + std::to_string(c.n_experts) + " k=" + std::to_string(c.top_k);
    expect_equal(ids, what + " ids");
    expect_close(weights, kNmseRouter, what + " weights");
  }
}

TEST_F(BackendOpsGpuTest, ArgmaxRows) {
  for (auto [n, vocab] : std::vector<std::array<int64_t, 2>>{{1, 7}, {5, 2048}, {64, 151936}, {3, 1}}) {
    std::vector<float> v = randn(n * vocab, 3.0f);
    if (vocab > 4) {
      // Ties: row 0's maximum is repeated further on; the lower id must win, as on the CPU.
      const auto max_it = std::max_element(v.begin(), v.begin() + vocab);
      v[static_cast<size_t>(vocab - 1)] = *max_it;
    }
    Pair logits = make(DType::kF32, {n, vocab}, v);
    Pair ids = make_i32({n}, std::vector<int32_t>(static_cast<size_t>(n), -1));
    cpu_->argmax_rows(logits.cpu.tensor, ids.cpu.tensor);
    gpu_->argmax_rows(logits.gpu, ids.gpu);
    expect_equal(ids, "argmax_rows vocab=" + std::to_string(vocab));
  }
}

TEST_F(BackendOpsGpuTest, SwigluMlp) {
  for (auto [m, hidden, inter] : std::vector<std::array<int64_t, 3>>{{1, 64, 96}, {13, 256, 704}, {40, 1024, 512}}) {
    Pair x = make(DType::kBF16, {m, hidden}, randn(m * hidden));
    Pair gate_w = make(DType::kBF16, {inter, hidden}, randn(inter * hidden, 1.0f / std::sqrt(float(hidden))));
    Pair up_w = make(DType::kBF16, {inter, hidden}, randn(inter * hidden, 1.0f / std::sqrt(float(hidden))));
    Pair down_w = make(DType::kBF16, {hidden, inter}, randn(hidden * inter, 1.0f / std::sqrt(float(inter))));
    Pair scratch = make(DType::kBF16, {2 * m * inter}, std::vector<float>(static_cast<size_t>(2 * m * inter), 0.0f));
    Pair out = make(DType::kBF16, {m, hidden}, std::vector<float>(static_cast<size_t>(m * hidden), 0.0f));
    cpu_->swiglu_mlp(x.cpu.tensor, gate_w.cpu.tensor, up_w.cpu.tensor, down_w.cpu.tensor,
                     out.cpu.tensor, scratch.cpu.tensor);
    gpu_->swiglu_mlp(x.gpu, gate_w.gpu, up_w.gpu, down_w.gpu, out.gpu, scratch.gpu);
    expect_close(out, kNmseMlp, "swiglu_mlp m=" + std::to_string(m));
    (void)read_gpu(scratch, "swiglu scratch");  // guards only
  }
}

TEST_F(BackendOpsGpuTest, AddSigmoidScaled) {
  for (auto [m, d] : std::vector<std::array<int64_t, 2>>{{1, 64}, {11, 333}}) {
    Pair out = make(DType::kBF16, {m, d}, randn(m * d));
    Pair gate = make(DType::kBF16, {m, 1}, randn(m, 2.0f));
    Pair y = make(DType::kBF16, {m, d}, randn(m * d));
    cpu_->add_sigmoid_scaled(out.cpu.tensor, gate.cpu.tensor, y.cpu.tensor);
    gpu_->add_sigmoid_scaled(out.gpu, gate.gpu, y.gpu);
    expect_close(out, kNmseRounding, "add_sigmoid_scaled");
  }
}

TEST_F(BackendOpsGpuTest, Add) {
  for (int64_t n : {1, 1000, 4097}) {
    Pair out = make(DType::kBF16, {n}, randn(n));
    Pair y = make(DType::kBF16, {n}, randn(n));
    cpu_->add(out.cpu.tensor, y.cpu.tensor);
    gpu_->add(out.gpu, y.gpu);
    expect_close(out, kNmseRounding, "add");
  }
}

TEST_F(BackendOpsGpuTest, GatherAndScatterAddRows) {
  const int64_t n_src = 29, d = 131, n = 11;
  std::vector<int32_t> rows(static_cast<size_t>(n_src));
  std::iota(rows.begin(), rows.end(), 0);
  std::shuffle(rows.begin(), rows.end(), rng_);
  rows.resize(static_cast<size_t>(n));  // distinct, as the callers guarantee
  Pair rows_t = make_i32({n}, rows);

  Pair src = make(DType::kBF16, {n_src, d}, randn(n_src * d));
  Pair gathered = make(DType::kBF16, {n, d}, std::vector<float>(static_cast<size_t>(n * d), 0.0f));
  cpu_->gather_rows(src.cpu.tensor, rows_t.cpu.tensor, gathered.cpu.tensor);
  gpu_->gather_rows(src.gpu, rows_t.gpu, gathered.gpu);
  expect_equal(gathered, "gather_rows");

  Pair part = make(DType::kBF16, {n, d}, randn(n * d));
  Pair scale = make(DType::kF32, {n}, randn(n));
  Pair acc = make(DType::kBF16, {n_src, d}, randn(n_src * d));
  cpu_->scatter_add_rows(part.cpu.tensor, rows_t.cpu.tensor, scale.cpu.tensor, acc.cpu.tensor);
  gpu_->scatter_add_rows(part.gpu, rows_t.gpu, scale.gpu, acc.gpu);
  expect_close(acc, kNmseRounding, "scatter_add_rows");
}

TEST_F(BackendOpsGpuTest, FillZeroAndCopy) {
  const int64_t m = 7, d = 45;
  Pair a = make(DType::kBF16, {m, d}, randn(m * d));
  Pair b = make(DType::kBF16, {m, d}, randn(m * d));
  cpu_->copy(b.cpu.tensor, a.cpu.tensor);
  gpu_->copy(b.gpu, a.gpu);
  expect_equal(b, "copy");
  cpu_->fill_zero(a.cpu.tensor);
  gpu_->fill_zero(a.gpu);
  expect_equal(a, "fill_zero");
}

TEST_F(BackendOpsGpuTest, UploadWeightConvertsToBf16) {
  const std::vector<float> w = randn(300);
  HostTensorView view;
  view.dtype = DType::kF32;
  view.shape = {10, 30};
  view.data = w.data();
  OwnedTensor t = gpu_->upload_weight(view);
  ASSERT_EQ(t.tensor.dtype, DType::kBF16);
  std::vector<uint16_t> got(300);
  gpu_->copy_to_host(got.data(), t.tensor, got.size() * 2);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], f32_to_bf16(w[i])) << i;
}

}  // namespace
}  // namespace msi

// The sampling kernel: one block per row, every stage a pass over the row in global memory (the
// row is too long for shared memory; passes after the first mostly hit L2 for small batches).
//
//   A   max and argmax of the scaled row (greedy rows and top_k == 1 stop here)
//   K   top-k: radix select (11 + 11 + 10 bits) of the k-th key by count   (only if 1 < k < vocab)
//   P   top-p: radix select of the cut by probability mass                 (only if top_p < 1)
//   M   the candidates' mass                                               (only if top_p ≥ 1)
//   D   draw: ordered prefix sums of the kept weights in id order, stopping at u · mass
//
// Ranking: a scaled value v maps to a uint32 key whose unsigned order is v's order (−0 is made
// +0 first, NaN logits become −inf), so "v desc, then id asc" is "key desc, then id asc". A radix
// select finds the key of the cut; the cut's tie group (equal keys, hence equal weights) is split
// by id with one more pass, only when the group is not wholly kept.
//
// Probabilities: w = expf(v − max) in fp32 (exactly 1 at the max, so +inf logits work), stored as
// fixed point W = ⌊w · 2⁴⁰⌋ in uint64. Every mass (histogram bins, totals, prefix sums) is an exact
// integer sum, so the kept mass equals the sum the draw walks and u · mass always lands on a
// token with W > 0; there is no rounding fallback to need. The CPU sums fp32 weights in fp64; see
// sample.cuh for when the two can differ.
#include "backend/cuda/sample.cuh"

#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace msi::cuda {
namespace {

constexpr int kThreads = 512;  // 2 blocks per SM: 256 rows fit one wave on an H100 (132 SMs)
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kBins = 2048;  // 11-bit radix digits: three passes cover a 32-bit key
constexpr int kBinsPerThread = kBins / kThreads;
constexpr int kDrawItems = 4;  // consecutive ids per thread in the draw's prefix sum
constexpr double kFixedOne = 0x1p40;  // W of the top token; vocab · 2⁴⁰ < 2⁶³ for kSampleMaxVocab
constexpr unsigned kFullMask = 0xffffffffu;

using u64 = unsigned long long;

// Candidates of a cut, in rank order: every key above `key`, and the ids below `id_end` of `key`.
struct Cut {
  uint32_t key;
  int32_t id_end;
};
// Key 0 is below every value's key (it would be a NaN).
__device__ __forceinline__ Cut keep_all() { return Cut{0u, INT32_MAX}; }

struct Shared {
  u64 hist[kBins];
  u64 scan[kWarps];
  float best_v[kWarps];
  int32_t best_i[kWarps];
  uint32_t warp_counts[kWarps];
  uint32_t bin;
  u64 above, group;
  int32_t found;
};

struct Row {
  const float* x;
  int64_t vocab;
  float temperature;  // 1 for greedy rows
  float vmax;         // the scaled maximum, once pass A has run
};

__device__ __forceinline__ bool in_cut(uint32_t key, int32_t id, const Cut& c) {
  return key > c.key || (key == c.key && id < c.id_end);
}

// NOTE: IEEE division (nvcc's default -prec-div=true), bit-equal to the CPU's logits / t.
__device__ __forceinline__ float scaled_value(float x, float temperature) {
  const float v = isnan(x) ? -INFINITY : __fdiv_rn(x, temperature);
  return v == 0.0f ? 0.0f : v;
}

__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float value_of_key(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// NOTE: w · 2⁴⁰ is exact in fp32 (a power-of-two scale of a value ≤ 1), so the truncating fp32
// conversion equals ⌊w · 2⁴⁰⌋ without a trip through fp64.
__device__ __forceinline__ u64 fixed_weight(float v, float vmax) {
  const float w = v == vmax ? 1.0f : expf(v - vmax);
  return __float2ull_rz(w * static_cast<float>(kFixedOne));
}

// Larger value first; on a tie the lower id.
__device__ __forceinline__ bool better(float va, int32_t a, float vb, int32_t b) {
  return va > vb || (va == vb && a < b);
}

// f(id, x) for every element of the row, float4 loads where the row is 16-byte aligned.
template <typename F>
__device__ __forceinline__ void for_each_in_row(const Row& r, F&& f) {
  int64_t tail = 0;
  if ((reinterpret_cast<uintptr_t>(r.x) & 15) == 0) {
    const int64_t n4 = r.vocab / 4;
    const float4* x4 = reinterpret_cast<const float4*>(r.x);
#pragma unroll 4
    for (int64_t i = threadIdx.x; i < n4; i += kThreads) {
      const float4 q = __ldg(x4 + i);
      const int32_t id = static_cast<int32_t>(4 * i);
      f(id, q.x);
      f(id + 1, q.y);
      f(id + 2, q.z);
      f(id + 3, q.w);
    }
    tail = 4 * n4;
  }
  for (int64_t j = tail + threadIdx.x; j < r.vocab; j += kThreads) f(static_cast<int32_t>(j), __ldg(r.x + j));
}

// Exclusive prefix sum over the block in thread order; *total gets the block's sum.
// NOTE: call from every thread; starts with a barrier so back-to-back calls may reuse `scratch`.
__device__ __forceinline__ u64 block_exclusive_scan(u64 x, u64* total, u64* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  u64 incl = x;
#pragma unroll
  for (int o = 1; o < kWarpSize; o <<= 1) {
    const u64 y = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += y;
  }
  __syncthreads();
  if (lane == kWarpSize - 1) scratch[warp] = incl;
  __syncthreads();
  u64 before = 0, sum = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const u64 s = scratch[w];
    before += w < warp ? s : 0;
    sum += s;
  }
  *total = sum;
  return before + incl - x;
}

// The id of the `rank`-th (1-based) element in id order that `cand` keeps and whose key is `key`.
// One ordered pass with ballots; only reached when a tie group straddles a cut.
__device__ int32_t nth_id_of_key(const Row& r, const Cut& cand, uint32_t key, u64 rank, Shared& sh) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  u64 seen = 0;
  for (int64_t base = 0; base < r.vocab; base += kThreads) {
    const int64_t j = base + threadIdx.x;
    bool match = false;
    if (j < r.vocab) {
      const uint32_t k = order_key(scaled_value(__ldg(r.x + j), r.temperature));
      match = k == key && in_cut(k, static_cast<int32_t>(j), cand);
    }
    const unsigned ballot = __ballot_sync(kFullMask, match);
    if (lane == 0) sh.warp_counts[warp] = __popc(ballot);
    __syncthreads();
    u64 before = 0, tile = 0;
    for (int w = 0; w < kWarps; ++w) {
      before += w < warp ? sh.warp_counts[w] : 0;
      tile += sh.warp_counts[w];
    }
    const u64 my_rank = seen + before + __popc(ballot & ((1u << lane) - 1)) + 1;
    if (match && my_rank == rank) sh.found = static_cast<int32_t>(j);
    seen += tile;
    __syncthreads();  // warp_counts is rewritten next tile; sh.found is visible after it
    if (seen >= rank) break;
  }
  return sh.found;
}

// Radix select in rank order over the elements `cand` keeps. Sums a quantity per key — 1 (top-k,
// target k) or the fixed weight (top-p, target ⌈top_p · total mass⌉) — and returns the smallest
// rank-order prefix whose sum reaches the target. For top-p, *kept_mass gets that prefix's mass.
template <bool kMass>
__device__ Cut select_prefix(const Row& r, const Cut& cand, u64 count_target, double top_p,
                             u64* kept_mass, Shared& sh) {
  uint32_t prefix = 0, prefix_mask = 0;
  u64 above = 0, group = 0, target = count_target;
#pragma unroll 1
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
    const uint32_t digit_mask = pass == 2 ? 0x3ffu : 0x7ffu;
    for (int b = threadIdx.x; b < kBins; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    for_each_in_row(r, [&](int32_t id, float x) {
      const float v = scaled_value(x, r.temperature);
      const uint32_t key = order_key(v);
      if ((key & prefix_mask) != prefix || !in_cut(key, id, cand)) return;
      const u64 q = kMass ? fixed_weight(v, r.vmax) : 1;
      if (q != 0) atomicAdd(&sh.hist[(key >> shift) & digit_mask], q);
    });
    __syncthreads();
    // Thread t owns the bins at descending positions [t · 4, t · 4 + 4): rank order.
    u64 h[kBinsPerThread];
    u64 mine = 0;
#pragma unroll
    for (int i = 0; i < kBinsPerThread; ++i) {
      h[i] = sh.hist[kBins - 1 - (threadIdx.x * kBinsPerThread + i)];
      mine += h[i];
    }
    u64 total = 0;
    const u64 before = block_exclusive_scan(mine, &total, sh.scan);
    if (kMass && pass == 0) {
      // total is every candidate's mass here. Integer masses: prefix ≥ p · total ⇔ ≥ ⌈p · total⌉.
      const double want = top_p * static_cast<double>(total);
      target = want < 1.0 ? 1 : want >= static_cast<double>(total) ? total
                                                                    : static_cast<u64>(ceil(want));
    }
    u64 run = above + before;
#pragma unroll
    for (int i = 0; i < kBinsPerThread; ++i) {
      if (run < target && target <= run + h[i]) {  // exactly one bin of the block satisfies this
        sh.bin = static_cast<uint32_t>(kBins - 1 - (threadIdx.x * kBinsPerThread + i));
        sh.above = run;
        sh.group = h[i];
      }
      run += h[i];
    }
    __syncthreads();
    prefix |= sh.bin << shift;
    prefix_mask |= digit_mask << shift;
    above = sh.above;
    group = sh.group;
  }
  // The cut lies in the tie group of key `prefix`; its members share one weight.
  u64 need, n_group;
  if constexpr (kMass) {
    const u64 w = fixed_weight(value_of_key(prefix), r.vmax);  // > 0: the group holds mass
    need = (target - above + w - 1) / w;
    n_group = group / w;
    *kept_mass = above + need * w;
  } else {
    need = target - above;
    n_group = group;
  }
  if (need == n_group) return Cut{prefix, INT32_MAX};
  return Cut{prefix, nth_id_of_key(r, cand, prefix, need, sh) + 1};
}

__device__ u64 candidate_mass(const Row& r, const Cut& cand, Shared& sh) {
  u64 mine = 0;
  for_each_in_row(r, [&](int32_t id, float x) {
    const float v = scaled_value(x, r.temperature);
    if (in_cut(order_key(v), id, cand)) mine += fixed_weight(v, r.vmax);
  });
  u64 total = 0;
  block_exclusive_scan(mine, &total, sh.scan);
  return total;
}

// The first id (ascending) whose inclusive prefix sum of kept weights exceeds `target`.
__device__ int32_t draw(const Row& r, const Cut& cand, const Cut& keep, u64 target, int32_t fallback,
                        Shared& sh) {
  __syncthreads();  // a tie split just before may still be reading sh.found
  if (threadIdx.x == 0) sh.found = fallback;
  const bool aligned = (reinterpret_cast<uintptr_t>(r.x) & 15) == 0;
  u64 running = 0;
  for (int64_t base = 0; base < r.vocab; base += kThreads * kDrawItems) {
    const int64_t j0 = base + threadIdx.x * kDrawItems;
    float x[kDrawItems];
    if (aligned && j0 + kDrawItems <= r.vocab) {
      const float4 q = __ldg(reinterpret_cast<const float4*>(r.x + j0));
      x[0] = q.x, x[1] = q.y, x[2] = q.z, x[3] = q.w;
    } else {
#pragma unroll
      for (int i = 0; i < kDrawItems; ++i) x[i] = j0 + i < r.vocab ? __ldg(r.x + j0 + i) : -INFINITY;
    }
    u64 w[kDrawItems];
    u64 mine = 0;
#pragma unroll
    for (int i = 0; i < kDrawItems; ++i) {
      const int32_t id = static_cast<int32_t>(j0 + i);
      const float v = scaled_value(x[i], r.temperature);
      const uint32_t key = order_key(v);
      w[i] = j0 + i < r.vocab && in_cut(key, id, cand) && in_cut(key, id, keep) ? fixed_weight(v, r.vmax) : 0;
      mine += w[i];
    }
    u64 tile = 0;
    u64 pos = running + block_exclusive_scan(mine, &tile, sh.scan);
    if (pos <= target && target < pos + mine) {
#pragma unroll
      for (int i = 0; i < kDrawItems; ++i) {
        if (pos <= target && target < pos + w[i]) sh.found = static_cast<int32_t>(j0 + i);
        pos += w[i];
      }
    }
    running += tile;
    if (running > target) break;
  }
  __syncthreads();
  return sh.found;
}

__global__ void __launch_bounds__(kThreads, 2)
    sample_kernel(const float* __restrict__ logits, const float* __restrict__ params, int64_t vocab,
                  int32_t* __restrict__ ids) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x;
  const float temperature = params[4 * row], top_p = params[4 * row + 1];
  const float top_k = params[4 * row + 2], u = params[4 * row + 3];
  const bool greedy = !(temperature > 0.0f);  // 0, negative or NaN
  Row r{logits + row * vocab, vocab, greedy ? 1.0f : temperature, 0.0f};

  // A: the rank-first element (the argmax for greedy rows, where the "scale" is 1).
  float best_v = -INFINITY;
  int32_t best_i = INT32_MAX;
  for_each_in_row(r, [&](int32_t id, float x) {
    const float v = scaled_value(x, r.temperature);
    if (better(v, id, best_v, best_i)) best_v = v, best_i = id;
  });
  for (int o = kWarpSize / 2; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, best_v, o);
    const int32_t oi = __shfl_xor_sync(kFullMask, best_i, o);
    if (better(ov, oi, best_v, best_i)) best_v = ov, best_i = oi;
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) sh.best_v[warp] = best_v, sh.best_i[warp] = best_i;
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) {
    if (better(sh.best_v[w], sh.best_i[w], best_v, best_i)) best_v = sh.best_v[w], best_i = sh.best_i[w];
  }
  const int64_t k = top_k >= 1.0f && top_k < static_cast<float>(vocab) ? static_cast<int64_t>(top_k) : vocab;
  if (greedy || k == 1) {
    if (threadIdx.x == 0) ids[row] = best_i;
    return;
  }
  r.vmax = best_v;

  Cut cand = keep_all(), keep = keep_all();
  if (k < vocab) cand = select_prefix<false>(r, keep_all(), static_cast<u64>(k), 0.0, nullptr, sh);
  u64 mass = 0;
  if (top_p < 1.0f) {
    keep = select_prefix<true>(r, cand, 0, static_cast<double>(top_p), &mass, sh);
  } else {
    mass = candidate_mass(r, cand, sh);
  }
  // mass ≥ 2⁴⁰ (the top token is kept), so the target is a valid index into the kept mass.
  const double du = u >= 0.0f ? static_cast<double>(u) : 0.0;  // NaN and negative u: 0
  const u64 target = du >= 1.0 ? mass - 1 : min(static_cast<u64>(du * static_cast<double>(mass)), mass - 1);
  const int32_t id = draw(r, cand, keep, target, best_i, sh);
  if (threadIdx.x == 0) ids[row] = id;
}

}  // namespace

void launch_sample_rows(const float* logits, const float* params, int64_t n, int64_t vocab,
                        int32_t* ids, cudaStream_t stream) {
  if (n == 0) return;
  sample_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, params, vocab, ids);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

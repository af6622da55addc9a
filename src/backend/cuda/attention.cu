// Paged attention, split-KV on tensor cores (see attention.cuh for the decomposition).
//
// Block = kWarps warps on one (token, kv head, head tile, split). The block's key chunk is cut
// into tiles of kTileKeys keys; warp w takes tiles w, w + kWarps, ... with its own cp.async
// pipeline of kStages tiles (no block-wide barrier in the loop) and its own fp32 online softmax
// over the 16 MMA rows. At the end the warps' (max, sum, o) are merged through shared memory.
//
// Per warp tile: S[16, 16] = Q[16, D] · K[16 keys, D]ᵀ (K rows are already the MMA's col-major
// B operand), P = exp2(S·scale·log2e − m) rounded to bf16 as the A operand of O[16, D] += P · V
// (V through ldmatrix.trans). The padded rows (heads past the group) compute on zeros and are
// never written.
#include <algorithm>
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_mma.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace msi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kHeadRows = 16;                       // MMA rows: query heads of one block
constexpr int kTileKeys = 16;                       // keys per warp tile (one MMA k-step of PV)
constexpr int kChunkAlign = kWarps * kTileKeys;     // split chunks are whole block tiles
constexpr float kLog2e = 1.4426950408889634f;

// Planner constants, measured on H100 (decode, head_dim 128, 1K-4K contexts): splits shorter
// than kMinSplitKeys cost more in start-up and merging than they gain; with more blocks than half
// the SMs the merge kernel costs more than the idle SMs; below that, ~2 blocks per SM is best.
constexpr int64_t kMinSplitKeys = 256;
constexpr int64_t kTargetBlocksPerSm = 2;

// Keys of each split of a context of n_keys keys, and how many splits it uses (≤ n_splits).
// The attention and merge kernels both derive the split layout from this one function.
__device__ __forceinline__ int split_chunk_keys(int n_keys, int n_splits) {
  const int per_split = (n_keys + n_splits - 1) / n_splits;
  return (per_split + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
}

__device__ __forceinline__ int context_keys(const PagedAttentionArgs& a, int64_t t) {
  const int64_t n = static_cast<int64_t>(a.token_pos[t]) + 1;
  return static_cast<int>(max(int64_t{0}, min(n, a.max_blocks_per_seq * a.block_size)));
}

__global__ void kv_append_kernel(const bf16* k, const bf16* v, bf16* k_cache, bf16* v_cache,
                                 const int32_t* slot_mapping, int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0) return;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[slot * kv_dim + i] = k[t * kv_dim + i];
    v_cache[slot * kv_dim + i] = v[t * kv_dim + i];
  }
}

// Compile-time layout for a padded head dim kDim (the runtime head_dim may be smaller; the
// columns past it are zero-filled and never written).
template <int kDim>
struct Layout {
  static constexpr int kStages = kDim >= 256 ? 2 : kDim >= 128 ? 3 : 4;  // ≤ ~57 KB at D ≤ 128
  // Shared rows are padded by 16 bytes so ldmatrix's 8 row addresses hit distinct banks.
  static constexpr int kRow = kDim + 8;                       // bf16 elements per smem row
  static constexpr int kTile = kTileKeys * kRow;              // one K or V tile
  static constexpr int kWarpElems = kStages * 2 * kTile;      // a warp's K and V stages
  static constexpr int kChunksPerRow = kDim / 8;              // 16-byte chunks per row
  static constexpr int kChunksPerLane = kTileKeys * kChunksPerRow / kWarpSize;
  static constexpr int kORow = kDim + 8;                      // fp32 per merge row
  static constexpr size_t kSmemBytes =
      (size_t{kHeadRows} * kRow + size_t{kWarps} * kWarpElems) * sizeof(bf16) +
      size_t{kWarps} * kHeadRows * 2 * sizeof(float);
  static_assert(kChunksPerLane >= 1, "a tile must give every lane a chunk");
  static_assert(kHeadRows * kORow * sizeof(float) <= kWarpElems * sizeof(bf16),
                "a warp's merge rows reuse its stage area");
};

// grid: (n_tokens, n_kv_heads * head_tiles, n_splits). Writes out directly when the token's
// context is one chunk, else this split's normalized o and log2-sum-exp into the workspace.
template <int kDim>
__global__ void __launch_bounds__(kThreads)
    split_kv_attention_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k_cache,
                              const bf16* __restrict__ v_cache, bf16* __restrict__ out,
                              float* __restrict__ part_o, float* __restrict__ part_lse,
                              PagedAttentionArgs a) {
  using L = Layout<kDim>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* q_s = reinterpret_cast<bf16*>(smem_raw);                  // [kHeadRows, kRow]
  bf16* stage_s = q_s + kHeadRows * L::kRow;                      // [kWarps][kStages][K|V][kTile]
  float* ml_s = reinterpret_cast<float*>(stage_s + kWarps * L::kWarpElems);  // [kWarps][16][2]

  const int64_t t = blockIdx.x;
  const int split = blockIdx.z;
  const int n_keys = context_keys(a, t);
  const int chunk = split_chunk_keys(n_keys, static_cast<int>(a.n_splits));
  const int n_used = chunk > 0 ? (n_keys + chunk - 1) / chunk : 0;
  if (split >= n_used) return;  // past this token's context (uniform over the block)
  const int key_begin = split * chunk;
  const int key_end = min(key_begin + chunk, n_keys);

  const int head_dim = static_cast<int>(a.head_dim);
  const int group = static_cast<int>(a.n_heads / a.n_kv_heads);
  const int head_tiles = (group + kHeadRows - 1) / kHeadRows;
  const int kv_head = blockIdx.y / head_tiles;
  const int head0 = kv_head * group + (blockIdx.y % head_tiles) * kHeadRows;  // first q head
  const int n_rows = min(kHeadRows, kv_head * group + group - head0);

  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int32_t* block_table =
      a.block_tables + static_cast<int64_t>(a.token_seq[t]) * a.max_blocks_per_seq;
  const int block_size = static_cast<int>(a.block_size);
  const int64_t row_stride = a.n_kv_heads * a.head_dim;  // elements per cache slot
  const bf16* k_head = k_cache + kv_head * a.head_dim;
  const bf16* v_head = v_cache + kv_head * a.head_dim;
  bf16* warp_s = stage_s + warp * L::kWarpElems;

  const int n_tiles = (key_end - key_begin + kTileKeys - 1) / kTileKeys;
  const int my_tiles = n_tiles > warp ? (n_tiles - warp + kWarps - 1) / kWarps : 0;
  auto tile_key0 = [&](int i) { return key_begin + (warp + i * kWarps) * kTileKeys; };
  // Lane l (and l + 16) holds the cache slot of key l of a tile, −1 past the chunk (or past
  // this warp's tiles). NOTE: slots are read kStages tiles ahead of their cp.async, so the
  // block-table read (a dependent DRAM round trip) overlaps the KV loads already in flight.
  auto fetch_slot = [&](int i) -> int32_t {
    const int j = tile_key0(i) + lane % kTileKeys;
    if (i >= my_tiles || j >= key_end) return -1;
    return __ldg(block_table + j / block_size) * block_size + j % block_size;
  };
  int32_t slot_ring[L::kStages];  // slots of the next kStages tiles to issue, nearest first
#pragma unroll
  for (int k = 0; k < L::kStages; ++k) slot_ring[k] = fetch_slot(k);
  auto next_slot = [&](int i) {  // the slots for tile i, refilling the ring with tile i + kStages
    const int32_t slot = slot_ring[0];
#pragma unroll
    for (int k = 0; k + 1 < L::kStages; ++k) slot_ring[k] = slot_ring[k + 1];
    slot_ring[L::kStages - 1] = fetch_slot(i + L::kStages);
    return slot;
  };
  auto issue = [&](int i, int32_t slot) {
    bf16* k_s = warp_s + (i % L::kStages) * 2 * L::kTile;
    bf16* v_s = k_s + L::kTile;
#pragma unroll
    for (int c = 0; c < L::kChunksPerLane; ++c) {
      const int chunk_id = lane + c * kWarpSize;
      const int r = chunk_id / L::kChunksPerRow, col = (chunk_id % L::kChunksPerRow) * 8;
      const int64_t row_slot = __shfl_sync(0xffffffffu, slot, r);  // int32: host-checked
      const bool ok = row_slot >= 0 && col < head_dim;
      const int64_t off = ok ? row_slot * row_stride + col : 0;
      cp_async_16(smem_u32(k_s + r * L::kRow + col), k_head + off, ok);
      cp_async_16(smem_u32(v_s + r * L::kRow + col), v_head + off, ok);
    }
  };

  // Per-lane fragment addresses (bytes in shared space), see attention_mma.cuh.
  const uint32_t q_addr =
      smem_u32(q_s + (lane % 16) * L::kRow + (lane / 16) * 8);                  // A: Q rows
  const int k_row = (lane % 8) + (lane / 16) * 8, k_col = ((lane / 8) % 2) * 8;  // B: K rows
  const int v_row = (lane % 8) + ((lane / 8) % 2) * 8, v_col = (lane / 16) * 8;  // B: V (trans)
  const float scale_log2 = a.scale * kLog2e;

  float o[kDim / 8][4];
#pragma unroll
  for (int n = 0; n < kDim / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY};  // running max of rows g and g + 8 (log2 domain)
  float l[2] = {0.0f, 0.0f};            // this lane's part of the running sums

  // Q rows of this head tile, zero-padded to 16 rows and kDim columns: the oldest cp.async
  // group, in flight together with the first KV tiles.
  for (int i = threadIdx.x; i < kHeadRows * L::kChunksPerRow; i += kThreads) {
    const int r = i / L::kChunksPerRow, col = (i % L::kChunksPerRow) * 8;
    const bool ok = r < n_rows && col < head_dim;
    const int64_t off = ok ? (t * a.n_heads + head0 + r) * head_dim + col : 0;
    cp_async_16(smem_u32(q_s + r * L::kRow + col), q + off, ok);
  }
  cp_async_commit();
#pragma unroll
  for (int i = 0; i < L::kStages - 1; ++i) {
    if (i < my_tiles) issue(i, next_slot(i));
    cp_async_commit();
  }
  cp_async_wait<L::kStages - 1>();  // this thread's Q chunks
  __syncthreads();                  // everyone's

  for (int i = 0; i < my_tiles; ++i) {
    const int ahead = i + L::kStages - 1;
    if (ahead < my_tiles) issue(ahead, next_slot(ahead));
    cp_async_commit();
    cp_async_wait<L::kStages - 1>();
    __syncwarp();

    const bf16* k_s = warp_s + (i % L::kStages) * 2 * L::kTile;
    const bf16* v_s = k_s + L::kTile;
    const uint32_t k_addr = smem_u32(k_s + k_row * L::kRow + k_col);
    const uint32_t v_addr = smem_u32(v_s + v_row * L::kRow + v_col);

    float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {
      uint32_t qa[4], kb[4];
      ldmatrix_x4(qa, q_addr + kk * 16 * sizeof(bf16));
      ldmatrix_x4(kb, k_addr + kk * 16 * sizeof(bf16));
      mma_bf16_16816(s[0], qa, kb[0], kb[1]);  // keys 0..7
      mma_bf16_16816(s[1], qa, kb[2], kb[3]);  // keys 8..15
    }

    // Online softmax over this tile; a row's 16 keys live in the 4 lanes of a quad.
    const int key0 = tile_key0(i) + (lane % 4) * 2;
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool valid = key0 + n * 8 + (e % 2) < key_end;
        s[n][e] = valid ? s[n][e] * scale_log2 : -INFINITY;
        tile_max[e / 2] = fmaxf(tile_max[e / 2], s[n][e]);
      }
    }
    float correction[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
      // Finite: key tile_key0(i) is in the chunk. exp2(−inf) = 0 on the first tile.
      const float new_max = fmaxf(m[h], tile_max[h]);
      correction[h] = exp2f(m[h] - new_max);
      m[h] = new_max;
      l[h] *= correction[h];
    }
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = exp2f(s[n][e] - m[e / 2]);
        l[e / 2] += s[n][e];
      }
    }
    uint32_t pa[4];  // P as the A operand: k = keys 0..7 in pa[0..1], 8..15 in pa[2..3]
    pa[0] = pack_bf16x2(s[0][0], s[0][1]);
    pa[1] = pack_bf16x2(s[0][2], s[0][3]);
    pa[2] = pack_bf16x2(s[1][0], s[1][1]);
    pa[3] = pack_bf16x2(s[1][2], s[1][3]);
#pragma unroll
    for (int n = 0; n < kDim / 8; ++n) {
      o[n][0] *= correction[0];
      o[n][1] *= correction[0];
      o[n][2] *= correction[1];
      o[n][3] *= correction[1];
    }
#pragma unroll
    for (int dd = 0; dd < kDim / 16; ++dd) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, v_addr + dd * 16 * sizeof(bf16));
      mma_bf16_16816(o[2 * dd], pa, vb[0], vb[1]);
      mma_bf16_16816(o[2 * dd + 1], pa, vb[2], vb[3]);
    }
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  cp_async_wait<0>();  // only empty groups remain, but the stage area is reused below
  __syncwarp();

  // Publish this warp's state: o into its (now idle) stage area, (max, sum) per row.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
  float* o_s = reinterpret_cast<float*>(warp_s);  // [kHeadRows, kORow]
  const int g = lane / 4;
#pragma unroll
  for (int n = 0; n < kDim / 8; ++n) {
    const int col = n * 8 + (lane % 4) * 2;
    *reinterpret_cast<float2*>(o_s + g * L::kORow + col) = make_float2(o[n][0], o[n][1]);
    *reinterpret_cast<float2*>(o_s + (g + 8) * L::kORow + col) = make_float2(o[n][2], o[n][3]);
  }
  if (lane % 4 == 0) {
    float* ml = ml_s + warp * kHeadRows * 2;
    ml[g * 2] = m[0];
    ml[g * 2 + 1] = l[0];
    ml[(g + 8) * 2] = m[1];
    ml[(g + 8) * 2 + 1] = l[1];
  }
  __syncthreads();

  // Merge the warps, 4 columns per thread. A warp that had no tile has max −inf and weighs 0;
  // warp 0 always had one, so the row max is finite.
  const int quads = head_dim / 4;
  for (int i = threadIdx.x; i < n_rows * quads; i += kThreads) {
    const int r = i / quads, col = (i % quads) * 4;
    float row_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) row_max = fmaxf(row_max, ml_s[(w * kHeadRows + r) * 2]);
    float sum = 0.0f;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(ml_s[(w * kHeadRows + r) * 2] - row_max);
      sum += f * ml_s[(w * kHeadRows + r) * 2 + 1];
      const float4 ow = *reinterpret_cast<const float4*>(
          reinterpret_cast<const float*>(stage_s + w * L::kWarpElems) + r * L::kORow + col);
      acc.x += f * ow.x;
      acc.y += f * ow.y;
      acc.z += f * ow.z;
      acc.w += f * ow.w;
    }
    const float inv = 1.0f / sum;
    const int64_t row = t * a.n_heads + head0 + r;  // (token, q head)
    if (n_used == 1) {
      __nv_bfloat162 lo = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
      __nv_bfloat162 hi = __floats2bfloat162_rn(acc.z * inv, acc.w * inv);
      uint2 packed;
      packed.x = *reinterpret_cast<uint32_t*>(&lo);
      packed.y = *reinterpret_cast<uint32_t*>(&hi);
      *reinterpret_cast<uint2*>(out + row * head_dim + col) = packed;
    } else {
      const int64_t part = row * a.n_splits + split;
      *reinterpret_cast<float4*>(part_o + part * head_dim + col) =
          make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
      if (col == 0) part_lse[part] = row_max + log2f(sum);
    }
  }
}

// grid: (n_tokens, ceil(n_heads / heads_per_block)); 4 columns per thread. Combines the splits
// of tokens whose context used more than one (the others were written directly).
__global__ void __launch_bounds__(kThreads)
    merge_splits_kernel(const float* __restrict__ part_o, const float* __restrict__ part_lse,
                        bf16* __restrict__ out, PagedAttentionArgs a) {
  const int64_t t = blockIdx.x;
  const int n_splits = static_cast<int>(a.n_splits);
  const int n_keys = context_keys(a, t);
  const int chunk = split_chunk_keys(n_keys, n_splits);
  const int n_used = chunk > 0 ? (n_keys + chunk - 1) / chunk : 0;
  if (n_used <= 1) return;
  const int head_dim = static_cast<int>(a.head_dim);
  const int quads = head_dim / 4;
  const int heads_per_block = kThreads / quads;
  const int h = blockIdx.y * heads_per_block + threadIdx.x / quads;
  if (threadIdx.x >= heads_per_block * quads || h >= a.n_heads) return;
  const int col = (threadIdx.x % quads) * 4;
  const int64_t row = t * a.n_heads + h;
  const float* lse = part_lse + row * n_splits;
  float lse_max = -INFINITY;
  for (int s = 0; s < n_used; ++s) lse_max = fmaxf(lse_max, lse[s]);
  float sum = 0.0f;
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int s = 0; s < n_used; ++s) {
    const float w = exp2f(lse[s] - lse_max);
    const float4 os = *reinterpret_cast<const float4*>(part_o + (row * n_splits + s) * head_dim + col);
    sum += w;
    acc.x += w * os.x;
    acc.y += w * os.y;
    acc.z += w * os.z;
    acc.w += w * os.w;
  }
  const float inv = 1.0f / sum;
  __nv_bfloat162 lo = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
  __nv_bfloat162 hi = __floats2bfloat162_rn(acc.z * inv, acc.w * inv);
  uint2 packed;
  packed.x = *reinterpret_cast<uint32_t*>(&lo);
  packed.y = *reinterpret_cast<uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(out + row * head_dim + col) = packed;
}

template <int kDim>
void launch_split_kv(const bf16* q, const bf16* k_cache, const bf16* v_cache, bf16* out,
                     float* part_o, float* part_lse, const PagedAttentionArgs& a,
                     cudaStream_t stream) {
  constexpr size_t smem = Layout<kDim>::kSmemBytes;
  auto* kernel = split_kv_attention_kernel<kDim>;
  // A host-side attribute (no stream work), so it is legal while a graph is being captured.
  if (smem > 48 * 1024) {
    MSI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
  }
  const int64_t group = a.n_heads / a.n_kv_heads;
  const dim3 grid(static_cast<unsigned>(a.n_tokens),
                  static_cast<unsigned>(a.n_kv_heads * ((group + kHeadRows - 1) / kHeadRows)),
                  static_cast<unsigned>(a.n_splits));
  kernel<<<grid, kThreads, smem, stream>>>(q, k_cache, v_cache, out, part_o, part_lse, a);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_kv_append(const bf16* k, const bf16* v, bf16* k_cache, bf16* v_cache,
                      const int32_t* slot_mapping, int64_t n_tokens, int64_t kv_dim,
                      cudaStream_t stream) {
  if (n_tokens == 0 || kv_dim == 0) return;
  kv_append_kernel<<<static_cast<unsigned>(n_tokens), 128, 0, stream>>>(k, v, k_cache, v_cache,
                                                                        slot_mapping, kv_dim);
  MSI_CUDA_CHECK_LAUNCH();
}

size_t paged_attention_workspace_bytes(const PagedAttentionArgs& args, int64_t n_splits) {
  if (n_splits <= 1) return 0;
  return static_cast<size_t>(args.n_tokens * args.n_heads * n_splits * (args.head_dim + 1)) *
         sizeof(float);
}

int64_t plan_paged_attention_splits(const PagedAttentionArgs& args, int n_sms,
                                    size_t workspace_bytes) {
  const int64_t group = args.n_heads / args.n_kv_heads;
  const int64_t blocks =
      args.n_tokens * args.n_kv_heads * ((group + kHeadRows - 1) / kHeadRows);
  if (blocks == 0 || 2 * blocks > n_sms) return 1;
  const int64_t target = int64_t{n_sms} * kTargetBlocksPerSm;
  const int64_t max_context = args.max_blocks_per_seq * args.block_size;
  int64_t n_splits = (target + blocks - 1) / blocks;
  n_splits = std::min(n_splits, (max_context + kMinSplitKeys - 1) / kMinSplitKeys);
  const size_t per_split = paged_attention_workspace_bytes(args, 2) / 2;
  n_splits = std::min<int64_t>(n_splits, static_cast<int64_t>(workspace_bytes / per_split));
  n_splits = std::min<int64_t>(n_splits, 65535);  // gridDim.z
  return std::max<int64_t>(n_splits, 1);
}

void launch_paged_attention(const bf16* q, const bf16* k_cache, const bf16* v_cache, bf16* out,
                            const PagedAttentionArgs& args, void* workspace,
                            cudaStream_t stream) {
  if (args.n_tokens == 0 || args.n_heads == 0) return;
  float* part_o = static_cast<float*>(workspace);
  float* part_lse = part_o + args.n_tokens * args.n_heads * args.n_splits * args.head_dim;
  if (args.n_splits <= 1) part_o = part_lse = nullptr;
  if (args.head_dim <= 16) {
    launch_split_kv<16>(q, k_cache, v_cache, out, part_o, part_lse, args, stream);
  } else if (args.head_dim <= 32) {
    launch_split_kv<32>(q, k_cache, v_cache, out, part_o, part_lse, args, stream);
  } else if (args.head_dim <= 64) {
    launch_split_kv<64>(q, k_cache, v_cache, out, part_o, part_lse, args, stream);
  } else if (args.head_dim <= 128) {
    launch_split_kv<128>(q, k_cache, v_cache, out, part_o, part_lse, args, stream);
  } else {
    launch_split_kv<256>(q, k_cache, v_cache, out, part_o, part_lse, args, stream);
  }
  if (args.n_splits > 1) {
    const int64_t heads_per_block = kThreads / (args.head_dim / 4);
    const dim3 grid(static_cast<unsigned>(args.n_tokens),
                    ceil_div(args.n_heads, heads_per_block));
    merge_splits_kernel<<<grid, kThreads, 0, stream>>>(part_o, part_lse, out, args);
    MSI_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace msi::cuda

// Grouped MoE kernels (see moe_grouped.cuh).
//
// align: one block; each warp owns a contiguous range of (token, j) pairs and counts them per slot
// (warp match, no atomics), a scan turns the counts into per-warp bases, and a second walk places
// every pair at base + its rank among equal slots: stable in (token, j), hence run-to-run
// identical.
//
// gate_up / down: one block per (tile of ≤ 64 grouped rows of one slot) × (columns), 4 warps,
// bf16 mma.sync m16n8k16 with fp32 accumulation, operands staged through a kStages-deep cp.async
// ring of 64-wide K slices with an XOR swizzle (conflict-free ldmatrix). Decode tiles are mostly
// empty, so 16-row groups past the tile's rows are neither loaded nor multiplied; the weights are
// what streams, and the many small column blocks keep enough of them in flight to saturate HBM.
// The A loader gathers x rows through row_token (gate_up) — no permuted copy of x.
//
// Large M (prefill): 128-row × 256-weight-row blocks multiplied with Hopper wgmma (see "the
// large-M path" below), selected from host-known shapes by big_tiles_pay.
#include <atomic>
#include <climits>
#include <cstdint>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_grouped.cuh"

namespace msi::cuda {
namespace {

// ---- align ----

constexpr int kAlignWarps = 16;

__global__ void __launch_bounds__(kAlignWarps* kWarpSize)
    moe_align_kernel(const int32_t* __restrict__ topk_ids, const float* __restrict__ topk_weights,
                     int n_pairs, int top_k, const int32_t* __restrict__ slot_of_expert,
                     const int32_t* __restrict__ expert_replica, int n_experts, int n_slots,
                     int32_t* __restrict__ expert_offsets,
                     int32_t* __restrict__ row_token, float* __restrict__ row_gate,
                     int32_t* __restrict__ token_rows, int32_t* __restrict__ tiles) {
  extern __shared__ int32_t smem[];
  int32_t* base = smem;                              // [kAlignWarps][n_slots]: counts, then cursors
  int32_t* slot_map = base + kAlignWarps * n_slots;  // [n_experts]
  int32_t* slot_rows = slot_map + n_experts;         // [n_slots] rows of a slot, then its offset
  int32_t* slot_tiles = slot_rows + n_slots;         // [n_slots] tiles of a slot, then first tile
  int32_t* rep_count = slot_tiles + n_slots;         // [n_experts] replicas of an expert (1: none)
  int32_t* rep_index = rep_count + n_experts;        // [n_experts] this worker's replica
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;

  for (int i = tid; i < kAlignWarps * n_slots; i += blockDim.x) base[i] = 0;
  for (int e = tid; e < n_experts; e += blockDim.x) {
    const int s = slot_of_expert[e];
    slot_map[e] = s >= 0 && s < n_slots ? s : -1;
    rep_count[e] = expert_replica != nullptr ? max(expert_replica[2 * e], 1) : 1;
    rep_index[e] = expert_replica != nullptr ? expert_replica[2 * e + 1] : 0;
  }
  __syncthreads();

  const int per_warp = (n_pairs + kAlignWarps - 1) / kAlignWarps;
  const int lo = min(n_pairs, warp * per_warp), hi = min(n_pairs, lo + per_warp);
  auto slot_of_pair = [&](int p) {
    if (p >= hi) return -2;  // past the range: its own match group, never counted
    const int e = topk_ids[p];
    if (e < 0 || e >= n_experts) return -1;
    // A replicated expert takes only its share of the tokens (ExpertPlacement::route's rule).
    const int r = rep_count[e];
    return r == 1 || (p / top_k) % r == rep_index[e] ? slot_map[e] : -1;
  };

  // Pass 1: per-warp counts. Lanes with equal slots form one match group; its leader adds.
  for (int p0 = lo; p0 < hi; p0 += kWarpSize) {
    const int p = p0 + lane;
    const int s = slot_of_pair(p);
    const unsigned group = __match_any_sync(0xffffffffu, s);
    if (s >= 0 && lane == __ffs(group) - 1) base[warp * n_slots + s] += __popc(group);
    __syncwarp();
  }
  __syncthreads();

  // Per slot: totals and tiles, an exclusive scan over slots (warp 0), then per-warp bases.
  for (int s = tid; s < n_slots; s += blockDim.x) {
    int total = 0;
    for (int w = 0; w < kAlignWarps; ++w) total += base[w * n_slots + s];
    slot_rows[s] = total;
    slot_tiles[s] =
        (total + static_cast<int>(kMoeGroupedTileRows) - 1) / static_cast<int>(kMoeGroupedTileRows);
  }
  __syncthreads();
  if (warp == 0) {
    const int per_lane = (n_slots + kWarpSize - 1) / kWarpSize;
    const int s0 = min(n_slots, lane * per_lane), s1 = min(n_slots, s0 + per_lane);
    int rows = 0, n_tiles = 0;
    for (int s = s0; s < s1; ++s) {
      rows += slot_rows[s];
      n_tiles += slot_tiles[s];
    }
    int rows_incl = rows, tiles_incl = n_tiles;
    for (int o = 1; o < kWarpSize; o <<= 1) {
      const int r = __shfl_up_sync(0xffffffffu, rows_incl, o);
      const int t = __shfl_up_sync(0xffffffffu, tiles_incl, o);
      if (lane >= o) {
        rows_incl += r;
        tiles_incl += t;
      }
    }
    int row_at = rows_incl - rows, tile_at = tiles_incl - n_tiles;
    for (int s = s0; s < s1; ++s) {
      const int r = slot_rows[s], t = slot_tiles[s];
      slot_rows[s] = row_at;
      slot_tiles[s] = tile_at;
      row_at += r;
      tile_at += t;
    }
    if (lane == kWarpSize - 1) {
      expert_offsets[n_slots] = rows_incl;
      tiles[0] = tiles_incl;
      tiles[1] = rows_incl;
    }
  }
  __syncthreads();
  for (int s = tid; s < n_slots; s += blockDim.x) {
    const int first = slot_rows[s];
    expert_offsets[s] = first;
    int at = first;
    for (int w = 0; w < kAlignWarps; ++w) {
      const int c = base[w * n_slots + s];
      base[w * n_slots + s] = at;
      at += c;
    }
    int tile = slot_tiles[s];
    for (int r = first; r < at; r += static_cast<int>(kMoeGroupedTileRows), ++tile) {
      tiles[2 + 2 * tile] = s;
      tiles[3 + 2 * tile] = r;
    }
  }
  __syncthreads();

  // Pass 2: placement at the warp's cursor plus the rank among earlier equal lanes.
  for (int p0 = lo; p0 < hi; p0 += kWarpSize) {
    const int p = p0 + lane;
    const int s = slot_of_pair(p);
    const unsigned group = __match_any_sync(0xffffffffu, s);
    if (s >= 0) {
      const int row = base[warp * n_slots + s] + __popc(group & ((1u << lane) - 1u));
      row_token[row] = p / top_k;
      row_gate[row] = topk_weights[p];
      token_rows[p] = row;
    } else if (s == -1) {
      token_rows[p] = -1;
    }
    __syncwarp();
    if (s >= 0 && lane == __ffs(group) - 1) base[warp * n_slots + s] += __popc(group);
    __syncwarp();
  }
}

// ---- grouped GEMM primitives ----

constexpr int kTileRows = static_cast<int>(kMoeGroupedTileRows);
constexpr int kBK = 64;  // K slice per pipeline stage: 128 bytes per row, 8 chunks of 16 bytes
constexpr int kThreads = 128;
// Past this many blocks (many waves on any current GPU) a grid strides over its tiles instead, so
// an over-sized row bound (moe_down only knows act's capacity) costs no empty blocks.
constexpr int64_t kMaxBlocks = 4096;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared, bypassing L1; src_bytes = 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Element offset of (row, 16-byte chunk) in a [rows][kBK] stage: chunks XOR-swizzled by row so
// the 8 rows one ldmatrix phase reads fall in 8 distinct bank groups.
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * kBK + ((chunk ^ (row & 7)) * 8);
}

struct GroupedArgs {
  const bf16* a;             // gate_up: x [n, K]; down: act [R, K]
  const int32_t* row_token;  // gate_up: A row of grouped row r; down: nullptr (A row = r)
  const bf16* w;             // [n_slots, w_rows, K]
  int64_t w_slot_stride;     // w_rows * K
  const int32_t* tiles;
  const int32_t* offsets;
  const float* row_gate;  // down only
  bf16* out;              // [R, out_cols]
  int k;
  int out_cols;
  int inter;  // gate_up: row offset of the up half inside a slot
};

// kBN: weight rows per block (gate_up: kBN/2 gate + kBN/2 up rows → kBN/2 act columns).
// kWarpsN: warps side by side along N (the other 4/kWarpsN split the 64 rows).
template <int kBN, int kWarpsN, bool kGateUp, int kStages>
__global__ void __launch_bounds__(kThreads) moe_grouped_gemm_kernel(const GroupedArgs args) {
  constexpr int kWarpsM = 4 / kWarpsN;
  constexpr int kWarpRows = kTileRows / kWarpsM;
  constexpr int kMI = kWarpRows / 16;                  // m16 groups per warp
  constexpr int kWB = kBN / kWarpsN;                   // weight rows per warp
  constexpr int kNI = kWB / 8;                         // n8 tiles per warp
  constexpr int kBLoads = kBN * (kBK / 8) / kThreads;  // 16-byte chunks per thread per stage
  static_assert(kWarpsM * kWarpsN == 4 && kNI >= 1 && kBLoads >= 1, "tile shape");
  static_assert(!kGateUp || kNI % 2 == 0, "gate_up pairs gate and up n8 tiles per warp");

  // The grid's x covers the most tiles the shapes allow (or a capped share of them): blocks past
  // the device-side count exit, and a capped grid strides over the tiles.
  const int n_tiles = args.tiles[0];
  for (int tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    const int slot = args.tiles[2 + 2 * tile];
    const int row0 = args.tiles[3 + 2 * tile];
    const int m = min(kTileRows, args.offsets[slot + 1] - row0);  // 1..64 rows
    const int m16 = (m + 15) & ~15;

    extern __shared__ uint4 smem_raw[];
    bf16* s_a = reinterpret_cast<bf16*>(smem_raw);  // [kStages][64][kBK]
    bf16* s_b = s_a + kStages * kTileRows * kBK;    // [kStages][kBN][kBK]

    const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
    const int wn = warp % kWarpsN, wm = warp / kWarpsN;
    const int chunk = tid % 8;
    const int k = args.k;
    const int n_kt = (k + kBK - 1) / kBK;

    // This thread's A rows (tid/8 + 16c) and weight rows: source pointers, fixed for the K loop.
    const bf16* a_src[4];
    for (int c = 0; c < 4; ++c) {
      const int r = tid / 8 + 16 * c;
      const int src_row = r < m ? (kGateUp ? args.row_token[row0 + r] : row0 + r) : 0;
      a_src[c] = args.a + static_cast<int64_t>(src_row) * k + chunk * 8;
    }
    const bf16* w_slot = args.w + static_cast<int64_t>(slot) * args.w_slot_stride;
    const int n_block = blockIdx.y * (kGateUp ? kBN / 2 : kBN);  // first output column
    const bf16* b_src[kBLoads];
    for (int c = 0; c < kBLoads; ++c) {
      const int r = tid / 8 + 16 * c;
      int w_row;
      if constexpr (kGateUp) {
        // A warp's kWB rows: kWB/2 gate rows, then the up rows of the same act columns.
        const int q = r % kWB, half = kWB / 2;
        const int col = n_block + (r / kWB) * half + (q % half);
        w_row = q < half ? col : args.inter + col;
      } else {
        w_row = n_block + r;
      }
      b_src[c] = w_slot + static_cast<int64_t>(w_row) * k + chunk * 8;
    }

    auto load_stage = [&](int stage, int kt) {
      const int k0 = kt * kBK;
      const int bytes = k0 + chunk * 8 < k ? 16 : 0;  // K % 16 == 0: a chunk is all in or all out
      bf16* sa = s_a + stage * kTileRows * kBK;
      for (int c = 0; c < 4; ++c) {
        const int r = tid / 8 + 16 * c;
        if (r < m16) cp_async16(sa + swz(r, chunk), a_src[c] + k0, r < m ? bytes : 0);
      }
      bf16* sb = s_b + stage * kBN * kBK;
      for (int c = 0; c < kBLoads; ++c) {
        const int r = tid / 8 + 16 * c;
        cp_async16(sb + swz(r, chunk), b_src[c] + k0, bytes);
      }
    };

    float acc[kMI][kNI][4];
    for (int i = 0; i < kMI; ++i)
      for (int j = 0; j < kNI; ++j)
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    for (int s = 0; s < kStages - 1; ++s) {
      if (s < n_kt) load_stage(s, s);
      cp_async_commit();
    }
    for (int kt = 0; kt < n_kt; ++kt) {
      cp_async_wait<kStages - 2>();
      __syncthreads();  // stage kt landed for all; stage kt-1 is free for the prefetch below
      const int next = kt + kStages - 1;
      if (next < n_kt) load_stage(next % kStages, next);
      cp_async_commit();

      const bf16* sa = s_a + (kt % kStages) * kTileRows * kBK;
      const bf16* sb = s_b + (kt % kStages) * kBN * kBK;
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        uint32_t bfrag[kNI][2];
        if constexpr (kNI == 1) {
          const int l = lane % 16;
          ldmatrix_x2(bfrag[0], sb + swz(wn * kWB + l % 8, 2 * kk + l / 8));
        } else {
#pragma unroll
          for (int ni = 0; ni < kNI; ni += 2) {
            const int mat = lane / 8;
            uint32_t r[4];
            ldmatrix_x4(r,
                        sb + swz(wn * kWB + ni * 8 + (mat / 2) * 8 + lane % 8, 2 * kk + mat % 2));
            bfrag[ni][0] = r[0];
            bfrag[ni][1] = r[1];
            bfrag[ni + 1][0] = r[2];
            bfrag[ni + 1][1] = r[3];
          }
        }
#pragma unroll
        for (int mi = 0; mi < kMI; ++mi) {
          const int r16 = wm * kWarpRows + mi * 16;
          if (r16 >= m) continue;  // an empty 16-row group: warp-uniform skip
          uint32_t afrag[4];
          ldmatrix_x4(afrag, sa + swz(r16 + lane % 16, 2 * kk + lane / 16));
#pragma unroll
          for (int ni = 0; ni < kNI; ++ni) mma_bf16(acc[mi][ni], afrag, bfrag[ni]);
        }
      }
    }
    cp_async_wait<0>();  // only empty groups are pending; the next tile reuses every stage

    // Epilogue: C fragment rows lane/4 (+8), columns 2·(lane%4) (+1).
#pragma unroll
    for (int mi = 0; mi < kMI; ++mi) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wm * kWarpRows + mi * 16 + lane / 4 + 8 * h;
        if (r >= m) continue;
        const int64_t row = row0 + r;
        bf16* out_row = args.out + row * args.out_cols;
        if constexpr (kGateUp) {
#pragma unroll
          for (int ni = 0; ni < kNI / 2; ++ni) {
            const int col = n_block + wn * (kWB / 2) + ni * 8 + 2 * (lane % 4);
            const float g0 = acc[mi][ni][2 * h], g1 = acc[mi][ni][2 * h + 1];
            const float u0 = acc[mi][ni + kNI / 2][2 * h], u1 = acc[mi][ni + kNI / 2][2 * h + 1];
            // silu as the CPU writes it; exp overflow for very negative g gives the −0 limit.
            const float v0 = g0 / (1.0f + __expf(-g0)) * u0;
            const float v1 = g1 / (1.0f + __expf(-g1)) * u1;
            *reinterpret_cast<__nv_bfloat162*>(out_row + col) = __floats2bfloat162_rn(v0, v1);
          }
        } else {
          const float gate = args.row_gate[row];
#pragma unroll
          for (int ni = 0; ni < kNI; ++ni) {
            const int col = n_block + wn * kWB + ni * 8 + 2 * (lane % 4);
            *reinterpret_cast<__nv_bfloat162*>(out_row + col) =
                __floats2bfloat162_rn(gate * acc[mi][ni][2 * h], gate * acc[mi][ni][2 * h + 1]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done reading the stages before the next tile refills them
  }
}

// ---- the large-M path: 128 grouped rows × 256 weight rows per block ----
//
// Prefill-sized batches are compute-bound, and the 64 × 128 blocks above re-read every weight
// slice once per 64 rows with mma.sync, whose per-warp ldmatrix traffic bounds H100 near 35-40%
// of its tensor peak. Here a block takes two consecutive list tiles of one slot (the list is
// unchanged: the block of a slot's even tile also covers the odd one after it, whose own work
// item is skipped): 128 rows × 256 weight rows, two warpgroups of 64 rows each multiplying with
// wgmma.mma_async m64n256k16 straight from shared memory, fed by a 4-stage cp.async ring of
// 64-wide K slices (192 KiB, one block per SM) that keeps one wgmma group in flight. Work items
// are rastered in groups of kBigGroup list tiles (≈ one large expert): the blocks running together
// share one slot's weight columns and a few MiB of A rows, so weights stream from HBM about once
// and A stays in L2.
constexpr int kBigRows = 2 * kTileRows;
constexpr int kBigBN = 256;  // weight rows per block (gate_up: 128 gate + up pairs → 128 columns)
constexpr int kBigThreads = 256;
constexpr int kBigStages = 4;
constexpr int kBigGroup = 16;
constexpr int64_t kBigMaxBlocks = 1 << 16;  // past this the grid strides over the work items

// Opts the kernel into its dynamic shared memory once per device (a host call, not a stream op).
template <typename Kernel>
void ensure_smem(Kernel kernel, int bytes, std::atomic<uint64_t>& devices_done) {
  int device = 0;
  MSI_CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t{1} << (device % 64);
  if (devices_done.load(std::memory_order_acquire) & bit) return;
  MSI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  devices_done.fetch_or(bit, std::memory_order_acq_rel);
}

template <int kBN, int kWarpsN, bool kGateUp, int kStages = 4>
void launch_grouped(const GroupedArgs& args, int64_t max_tiles, int64_t n_out_cols,
                    cudaStream_t stream) {
  constexpr int kSmem = kStages * (kTileRows + kBN) * kBK * static_cast<int>(sizeof(bf16));
  static std::atomic<uint64_t> devices_done{0};
  auto kernel = moe_grouped_gemm_kernel<kBN, kWarpsN, kGateUp, kStages>;
  ensure_smem(kernel, kSmem, devices_done);
  const int64_t cols_per_block = kGateUp ? kBN / 2 : kBN;
  const int64_t col_blocks = ceil_div(n_out_cols, cols_per_block);
  const int64_t tile_blocks = std::min(max_tiles, std::max<int64_t>(1, kMaxBlocks / col_blocks));
  const dim3 grid(static_cast<unsigned>(tile_blocks), static_cast<unsigned>(col_blocks));
  kernel<<<grid, kThreads, kSmem, stream>>>(args);
  MSI_CUDA_CHECK_LAUNCH();
}

// The stages' XOR swizzle (swz) is exactly wgmma's 128-byte swizzle for K-major rows of 128 bytes,
// given 1024-byte-aligned stages. gate_up stages the block's 128 gate rows, then its 128 up rows,
// so accumulator column chunk i (gate) pairs with chunk i + 16 (up) in the same thread.

// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t wgmma_desc(const void* p) {
  const uint64_t addr = smem_addr(p);
  return ((addr & 0x3FFFF) >> 4) | (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// cp.async writes are generic-proxy writes; wgmma reads through the async proxy.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a,
                                                 uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, "
      "%127"
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
        "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]),
        "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]),
        "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]),
        "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]),
        "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]),
        "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]),
        "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]),
        "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]),
        "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b));
}

template <bool kGateUp>
__global__ void __launch_bounds__(kBigThreads, 1)
    moe_grouped_wgmma_kernel(const GroupedArgs args, int x_tiles, int col_blocks) {
  constexpr int kRowStep = kBigThreads / 8;  // rows one cp.async pass covers
  constexpr int kALoads = kBigRows / kRowStep, kBLoads = kBigBN / kRowStep;
  constexpr int kHalf = kBigBN / 2;  // gate_up: gate rows, then as many up rows

  extern __shared__ uint4 smem_raw[];
  // 1024-byte alignment for the swizzle pattern (the launch adds the slack).
  bf16* s_a =
      reinterpret_cast<bf16*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  bf16* s_b = s_a + kBigStages * kBigRows * kBK;  // [kBigStages][kBigBN][kBK]
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int wg = warp / 4;  // warpgroup: rows 64·wg.. of the block
  const int chunk = tid % 8;
  const int k = args.k;
  const int n_kt = (k + kBK - 1) / kBK;
  const int n_tiles = args.tiles[0];
  const int total = x_tiles * col_blocks;

  for (int w = blockIdx.x; w < total; w += gridDim.x) {
    const int first = w / (kBigGroup * col_blocks) * kBigGroup;
    if (first >= n_tiles) break;
    const int group_tiles = min(kBigGroup, x_tiles - first);
    const int within = w - first * col_blocks;
    const int tile = first + within % group_tiles;
    const int col_block = within / group_tiles;
    if (tile >= n_tiles) continue;
    const int slot = args.tiles[2 + 2 * tile];
    const int row0 = args.tiles[3 + 2 * tile];
    if ((row0 - args.offsets[slot]) / kTileRows % 2 != 0) continue;
    const int m = min(kBigRows, args.offsets[slot + 1] - row0);

    const bf16* a_src[kALoads];
#pragma unroll
    for (int c = 0; c < kALoads; ++c) {
      const int r = tid / 8 + kRowStep * c;
      const int src_row = r < m ? (kGateUp ? args.row_token[row0 + r] : row0 + r) : 0;
      a_src[c] = args.a + static_cast<int64_t>(src_row) * k + chunk * 8;
    }
    const int n_block = col_block * (kGateUp ? kHalf : kBigBN);
    const bf16* w_slot = args.w + static_cast<int64_t>(slot) * args.w_slot_stride +
                         static_cast<int64_t>(n_block + tid / 8) * k + chunk * 8;
    auto b_src = [&](int c) {
      const int r = c * kRowStep;  // + tid / 8, folded into w_slot
      if constexpr (kGateUp) {
        return w_slot + static_cast<int64_t>(r < kHalf ? r : args.inter + r - kHalf) * k;
      } else {
        return w_slot + static_cast<int64_t>(r) * k;
      }
    };
    auto load_stage = [&](int stage, int kt) {
      const int k0 = kt * kBK;
      const int bytes = k0 + chunk * 8 < k ? 16 : 0;
      bf16* sa = s_a + stage * kBigRows * kBK;
#pragma unroll
      for (int c = 0; c < kALoads; ++c) {
        const int r = tid / 8 + kRowStep * c;
        // Rows past m are zero-filled: both warpgroups always multiply (a branch around wgmma
        // makes ptxas serialize it), a block of ≤ 64 rows wasting the second one's work.
        cp_async16(sa + swz(r, chunk), a_src[c] + k0, r < m ? bytes : 0);
      }
      bf16* sb = s_b + stage * kBigBN * kBK;
#pragma unroll
      for (int c = 0; c < kBLoads; ++c) {
        cp_async16(sb + swz(tid / 8 + kRowStep * c, chunk), b_src(c) + k0, bytes);
      }
    };

    float acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.0f;

      // NOTE: loads run kBigStages - 2 slices ahead, not - 1: the wgmma group of slice kt - 1 may
      // still be reading its stage while slice kt's is issued, so the stage refilled at kt is
      // kt - 2's, whose group the wait at the end of iteration kt - 1 retired.
#pragma unroll
    for (int s = 0; s < kBigStages - 2; ++s) {
      if (s < n_kt) load_stage(s, s);
      cp_async_commit();
    }
    for (int kt = 0; kt < n_kt; ++kt) {
      cp_async_wait<kBigStages - 3>();
      fence_proxy_async();
      __syncthreads();  // stage kt landed for all; both warpgroups retired slice kt - 2
      const int next = kt + kBigStages - 2;
      if (next < n_kt) load_stage(next % kBigStages, next);
      cp_async_commit();

      {
        const bf16* sa = s_a + (kt % kBigStages) * kBigRows * kBK + wg * 64 * kBK;
        const bf16* sb = s_b + (kt % kBigStages) * kBigBN * kBK;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          // A k16 slice starts 32 bytes further into each swizzled 128-byte row.
          wgmma_m64n256k16(acc, wgmma_desc(sa + kk * 16), wgmma_desc(sb + kk * 16));
        }
        wgmma_commit();
        wgmma_wait<1>();
      }
    }
    wgmma_wait<0>();
    cp_async_wait<0>();

    // Epilogue: warp w of the warpgroup holds rows 16·(w%4) + lane/4 (+8); accumulator chunk i
    // holds columns 8i + 2·(lane%4) (+1), as mma.sync's C fragment repeated along N.
    {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wg * 64 + (warp % 4) * 16 + lane / 4 + 8 * h;
        if (r >= m) continue;
        const int64_t row = row0 + r;
        bf16* out_row = args.out + row * args.out_cols;
        if constexpr (kGateUp) {
#pragma unroll
          for (int i = 0; i < kHalf / 8; ++i) {
            const int col = n_block + i * 8 + 2 * (lane % 4);
            const float g0 = acc[4 * i + 2 * h], g1 = acc[4 * i + 2 * h + 1];
            const float u0 = acc[4 * (i + kHalf / 8) + 2 * h];
            const float u1 = acc[4 * (i + kHalf / 8) + 2 * h + 1];
            const float v0 = g0 / (1.0f + __expf(-g0)) * u0;
            const float v1 = g1 / (1.0f + __expf(-g1)) * u1;
            *reinterpret_cast<__nv_bfloat162*>(out_row + col) = __floats2bfloat162_rn(v0, v1);
          }
        } else {
          const float gate = args.row_gate[row];
#pragma unroll
          for (int i = 0; i < kBigBN / 8; ++i) {
            const int col = n_block + i * 8 + 2 * (lane % 4);
            *reinterpret_cast<__nv_bfloat162*>(out_row + col) =
                __floats2bfloat162_rn(gate * acc[4 * i + 2 * h], gate * acc[4 * i + 2 * h + 1]);
          }
        }
      }
    }
    __syncthreads();
  }
}

// The large-M path, for shapes where blocks of 128 rows pay (big_tiles_pay). Work items are
// (list tile, column block) pairs; the grid strides over them past kBigMaxBlocks.
template <bool kGateUp>
void launch_grouped_big(const GroupedArgs& args, int64_t max_tiles, int64_t n_out_cols,
                        cudaStream_t stream) {
  // + 1 KiB: the kernel aligns its stages to 1024 bytes.
  constexpr int kSmem =
      kBigStages * (kBigRows + kBigBN) * kBK * static_cast<int>(sizeof(bf16)) + 1024;
  static std::atomic<uint64_t> devices_done{0};
  auto kernel = moe_grouped_wgmma_kernel<kGateUp>;
  ensure_smem(kernel, kSmem, devices_done);
  const int64_t col_blocks = n_out_cols / (kGateUp ? kBigBN / 2 : kBigBN);
  const int64_t grid = std::min(max_tiles * col_blocks, kBigMaxBlocks);
  kernel<<<static_cast<unsigned>(grid), kBigThreads, kSmem, stream>>>(
      args, static_cast<int>(max_tiles), static_cast<int>(col_blocks));
  MSI_CUDA_CHECK_LAUNCH();
}

// Once the average slot holds a 128-row block (e.g. Mixtral-8x7B from 512 tokens, Qwen3-30B-A3B
// from 2048), the work is compute-bound and the large blocks' weight reuse wins. `n_out_cols` must
// split into whole column blocks and the work-item count must fit an int.
bool big_tiles_pay(int64_t max_rows, int64_t n_slots, int64_t max_tiles, int64_t n_out_cols,
                   int64_t cols_per_block) {
  return max_rows >= kBigRows * std::min(n_slots, max_rows) && n_out_cols % cols_per_block == 0 &&
         max_tiles * (n_out_cols / cols_per_block) <= INT32_MAX;
}

// Once the average non-empty slot holds half a tile or more, wide column blocks win (measured on
// H100: Mixtral-8x7B at 256 tokens, 64 rows per expert, runs 1.4x faster with them): each A slice
// is re-read by far fewer blocks. Below that, narrow blocks put more weight bytes in flight.
bool wide_blocks_pay(int64_t max_rows, int64_t n_slots) {
  return max_rows >= (kMoeGroupedTileRows / 2) * std::min(n_slots, max_rows);
}

// Streaming multiprocessors of the current device, cached per device.
int64_t sm_count() {
  static std::atomic<int> cached[64] = {};
  int device = 0;
  MSI_CUDA_CHECK(cudaGetDevice(&device));
  std::atomic<int>& slot = cached[device % 64];
  int n = slot.load(std::memory_order_relaxed);
  if (n == 0) {
    MSI_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    slot.store(n, std::memory_order_relaxed);
  }
  return n;
}

__global__ void moe_combine_kernel(const bf16* __restrict__ y,
                                   const int32_t* __restrict__ token_rows, bf16* __restrict__ out,
                                   int top_k, int hidden) {
  const int64_t t = blockIdx.x;
  const int n_chunks = hidden / 8;
  for (int c = threadIdx.x; c < n_chunks; c += blockDim.x) {
    float acc[8] = {};
    for (int j = 0; j < top_k; ++j) {
      const int r = token_rows[t * top_k + j];
      if (r < 0) continue;
      const uint4 v = *reinterpret_cast<const uint4*>(y + static_cast<int64_t>(r) * hidden + c * 8);
      const bf16* e = reinterpret_cast<const bf16*>(&v);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += to_f32(e[i]);
    }
    uint4* o = reinterpret_cast<uint4*>(out + t * hidden + c * 8);
    uint4 v = *o;
    bf16* e = reinterpret_cast<bf16*>(&v);
#pragma unroll
    for (int i = 0; i < 8; ++i) e[i] = to_bf16(to_f32(e[i]) + acc[i]);
    *o = v;
  }
}

}  // namespace

void launch_moe_align(const int32_t* topk_ids, const float* topk_weights, int64_t n, int64_t top_k,
                      const int32_t* slot_of_expert, const int32_t* expert_replica, int64_t n_experts,
                      int64_t n_slots, int32_t* expert_offsets, int32_t* row_token, float* row_gate,
                      int32_t* token_rows, int32_t* tiles, cudaStream_t stream) {
  const size_t smem =
      static_cast<size_t>(kAlignWarps * n_slots + 3 * n_experts + 2 * n_slots) * sizeof(int32_t);
  moe_align_kernel<<<1, kAlignWarps * kWarpSize, smem, stream>>>(
      topk_ids, topk_weights, static_cast<int>(n * top_k), static_cast<int>(top_k), slot_of_expert,
      expert_replica, static_cast<int>(n_experts), static_cast<int>(n_slots), expert_offsets, row_token, row_gate,
      token_rows, tiles);
  MSI_CUDA_CHECK_LAUNCH();
}

void launch_moe_gate_up(const bf16* x, const bf16* w13, const int32_t* tiles,
                        const int32_t* expert_offsets, const int32_t* row_token, bf16* act,
                        int64_t max_rows, int64_t n_slots, int64_t hidden, int64_t inter,
                        cudaStream_t stream) {
  const int64_t max_tiles = moe_max_tiles(max_rows, n_slots);
  if (max_tiles == 0) return;
  GroupedArgs a{};
  a.a = x;
  a.row_token = row_token;
  a.w = w13;
  a.w_slot_stride = 2 * inter * hidden;
  a.tiles = tiles;
  a.offsets = expert_offsets;
  a.out = act;
  a.k = static_cast<int>(hidden);
  a.out_cols = static_cast<int>(inter);
  a.inter = static_cast<int>(inter);
  // Decode: 32 act columns per block unless that leaves under ~4 blocks per SM (few active
  // experts, small inter), where 16-column blocks balance the SMs better.
  const bool wide_fills = max_tiles * (inter / 32) >= 4 * sm_count();
  if (big_tiles_pay(max_rows, n_slots, max_tiles, inter, kBigBN / 2)) {
    launch_grouped_big<true>(a, max_tiles, inter, stream);  // 128 act columns per block
  } else if (inter % 64 == 0 && wide_blocks_pay(max_rows, n_slots)) {
    launch_grouped<128, 2, true>(a, max_tiles, inter, stream);  // 64 act columns per block
  } else if (inter % 32 == 0 && wide_fills) {
    launch_grouped<64, 4, true>(a, max_tiles, inter, stream);  // 32 act columns per block
  } else {
    launch_grouped<32, 2, true, 6>(a, max_tiles, inter, stream);  // 16 act columns per block
  }
}

void launch_moe_down(const bf16* act, const bf16* w2, const int32_t* tiles,
                     const int32_t* expert_offsets, const float* row_gate, bf16* y,
                     int64_t max_rows, int64_t n_slots, int64_t hidden, int64_t inter,
                     cudaStream_t stream) {
  const int64_t max_tiles = moe_max_tiles(max_rows, n_slots);
  if (max_tiles == 0) return;
  GroupedArgs a{};
  a.a = act;
  a.w = w2;
  a.w_slot_stride = hidden * inter;
  a.tiles = tiles;
  a.offsets = expert_offsets;
  a.row_gate = row_gate;
  a.out = y;
  a.k = static_cast<int>(inter);
  a.out_cols = static_cast<int>(hidden);
  // Decode: 6 stages of 32 weight rows, 3 blocks per SM (measured: better than 8 stages at 2).
  if (big_tiles_pay(max_rows, n_slots, max_tiles, hidden, kBigBN)) {
    launch_grouped_big<false>(a, max_tiles, hidden, stream);
  } else if (hidden % 128 == 0 && wide_blocks_pay(max_rows, n_slots)) {
    launch_grouped<128, 2, false>(a, max_tiles, hidden, stream);
  } else if (hidden % 32 == 0) {
    launch_grouped<32, 4, false, 6>(a, max_tiles, hidden, stream);
  } else {
    launch_grouped<16, 2, false, 6>(a, max_tiles, hidden, stream);
  }
}

void launch_moe_combine(const bf16* y, const int32_t* token_rows, bf16* out, int64_t n,
                        int64_t top_k, int64_t hidden, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t chunks = hidden / 8;
  const int threads = static_cast<int>(std::min<int64_t>(256, (chunks + 31) / 32 * 32));
  moe_combine_kernel<<<static_cast<unsigned>(n), threads, 0, stream>>>(
      y, token_rows, out, static_cast<int>(top_k), static_cast<int>(hidden));
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

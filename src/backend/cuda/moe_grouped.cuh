// Grouped MoE kernels: the device-side routing layout (align), the two grouped expert GEMMs with
// their fused epilogues (SwiGLU; gate scaling) and the per-token combine. Semantics of
// Backend::moe_{align,gate_up,down,combine} (backend/backend.h); CudaBackend validates and calls
// these. Launchers enqueue on `stream`, never block, never allocate, and size their grids from
// host-known shapes only (n, top_k, n_slots, dims), so a CUDA graph can capture them: the per-slot
// row counts exist only on the device.
//
// The tile list (MoeLayout::tiles) is encoded as
//   tiles[0] = n_tiles, tiles[1] = grouped rows,
//   tiles[2 + 2i] = slot of tile i, tiles[3 + 2i] = its first grouped row,
// one tile per kMoeGroupedTileRows rows of a slot (the last one of a slot may be partial); its
// rows end at min(first + kMoeGroupedTileRows, expert_offsets[slot + 1]). The large-M GEMM path
// (prefill: ≥ 128 rows per slot by the host-known bound) reads the same list and runs one
// 128-row block per pair of consecutive tiles of a slot (its tile at an even index within the
// slot, plus the next one), so the list needs no second encoding or capacity.
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace msi::cuda {

// Rows per tile: must equal msi::kMoeTileRows (checked where both are visible).
inline constexpr int64_t kMoeGroupedTileRows = 64;
// The align kernel keeps per-warp, per-slot counters in shared memory: these bound it.
inline constexpr int64_t kMoeMaxSlots = 512;
inline constexpr int64_t kMoeMaxExperts = 1024;

// The most tiles `n_rows` grouped rows over `n_slots` slots can need: every tile holds ≥ 1 row,
// and each non-empty slot adds at most one partial tile to the full ones.
inline int64_t moe_max_tiles(int64_t n_rows, int64_t n_slots) {
  if (n_rows <= 0) return 0;
  return std::min(n_rows, n_rows / kMoeGroupedTileRows + std::min(n_slots, n_rows));
}
// Elements of the encoded tile list for moe_max_tiles(n_rows, n_slots) tiles.
inline int64_t moe_tiles_numel(int64_t n_rows, int64_t n_slots) {
  return 2 + 2 * moe_max_tiles(n_rows, n_slots);
}

// One block. topk_ids/topk_weights [n, top_k]; slot_of_expert [n_experts]. Ids outside
// [0, n_experts) and slots outside [0, n_slots) count as skipped. expert_replica (nullable)
// [n_experts, 2] = (replicas, this worker's replica): a replicated expert's pair (t, j) is kept only
// when t % replicas == replica. Requires n_slots ≤ kMoeMaxSlots, n_experts ≤ kMoeMaxExperts.
// Deterministic: rows are placed by (slot, token, j).
void launch_moe_align(const int32_t* topk_ids, const float* topk_weights, int64_t n, int64_t top_k,
                      const int32_t* slot_of_expert, const int32_t* expert_replica, int64_t n_experts,
                      int64_t n_slots,
                      int32_t* expert_offsets, int32_t* row_token, float* row_gate,
                      int32_t* token_rows, int32_t* tiles, cudaStream_t stream);

// act[r, :inter] = silu(x[row_token[r]] · gate_sᵀ) ⊙ (x[row_token[r]] · up_sᵀ).
// x [n, hidden]; w13 [n_slots, 2 * inter, hidden]. `max_rows` = n * top_k sizes the grid.
// Requires hidden % 16 == 0 and inter % 16 == 0.
void launch_moe_gate_up(const __nv_bfloat16* x, const __nv_bfloat16* w13, const int32_t* tiles,
                        const int32_t* expert_offsets, const int32_t* row_token, __nv_bfloat16* act,
                        int64_t max_rows, int64_t n_slots, int64_t hidden, int64_t inter,
                        cudaStream_t stream);

// y[r, :hidden] = row_gate[r] · (act[r] · down_sᵀ). w2 [n_slots, hidden, inter].
// Requires hidden % 16 == 0 and inter % 16 == 0.
void launch_moe_down(const __nv_bfloat16* act, const __nv_bfloat16* w2, const int32_t* tiles,
                     const int32_t* expert_offsets, const float* row_gate, __nv_bfloat16* y,
                     int64_t max_rows, int64_t n_slots, int64_t hidden, int64_t inter,
                     cudaStream_t stream);

// out[t] += Σ_j y[token_rows[t, j]] (rows ≥ 0; fp32 sum in j order). One block per token.
// Requires hidden % 8 == 0.
void launch_moe_combine(const __nv_bfloat16* y, const int32_t* token_rows, __nv_bfloat16* out,
                        int64_t n, int64_t top_k, int64_t hidden, cudaStream_t stream);

}  // namespace msi::cuda

// CudaBackend's MoE ops: validation and dispatch to the grouped kernels (moe_grouped.cuh).
// Everything is enqueued on the backend's stream; grids come from host-known shapes (x rows,
// top_k, n_slots, dims) so the chain align → gate_up → down → combine is graph-capturable.
#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/moe_grouped.cuh"
#include "backend/cuda/tensor_access.h"
#include "core/check.h"

namespace msi {
namespace {

static_assert(cuda::kMoeGroupedTileRows == kMoeTileRows, "tile rows differ between the layers");

using cuda_access::bf;
using cuda_access::bf16;
using cuda_access::cbf;
using cuda_access::check_dtype;
using cuda_access::ci32;
using cuda_access::i32;

void check_layout(const MoeLayout& l, int64_t n_rows) {
  check_dtype(l.expert_offsets, DType::kI32, "moe expert_offsets");
  check_dtype(l.row_token, DType::kI32, "moe row_token");
  check_dtype(l.row_gate, DType::kF32, "moe row_gate");
  check_dtype(l.token_rows, DType::kI32, "moe token_rows");
  check_dtype(l.tiles, DType::kI32, "moe tiles");
  MSI_CHECK(l.n_slots > 0 && l.n_slots <= cuda::kMoeMaxSlots, "cuda: moe n_slots={} (1..{})",
            l.n_slots, cuda::kMoeMaxSlots);
  MSI_CHECK(l.expert_offsets.numel() >= l.n_slots + 1,
            "moe expert_offsets has {} elements, want {}", l.expert_offsets.numel(), l.n_slots + 1);
  MSI_CHECK(l.row_token.numel() >= n_rows && l.row_gate.numel() >= n_rows &&
                l.token_rows.numel() >= n_rows,
            "moe layout holds {} / {} / {} rows, want {}", l.row_token.numel(), l.row_gate.numel(),
            l.token_rows.numel(), n_rows);
  MSI_CHECK(l.tiles.numel() >= cuda::moe_tiles_numel(n_rows, l.n_slots),
            "moe tiles has {} elements, want {}", l.tiles.numel(),
            cuda::moe_tiles_numel(n_rows, l.n_slots));
}

// The grouped GEMMs tile K in 16-byte chunks and N in n8 pairs: both dims must be multiples of 16.
void check_dims(int64_t hidden, int64_t inter, const char* op) {
  MSI_CHECK(hidden > 0 && hidden % 16 == 0 && inter > 0 && inter % 16 == 0,
            "cuda: {} needs hidden and inter multiples of 16 (hidden={}, inter={})", op, hidden,
            inter);
  MSI_CHECK(hidden <= (int64_t{1} << 30) && inter <= (int64_t{1} << 30), "cuda: {} dims too large",
            op);
}

}  // namespace

void CudaBackend::moe_align(const Tensor& topk_ids, const Tensor& topk_weights,
                            const MoeLayout& layout) {
  check_dtype(topk_ids, DType::kI32, "moe topk_ids");
  check_dtype(topk_weights, DType::kF32, "moe topk_weights");
  check_dtype(layout.slot_of_expert, DType::kI32, "moe slot_of_expert");
  const int64_t n = topk_ids.rows(), top_k = topk_ids.cols();
  MSI_CHECK(topk_weights.numel() == topk_ids.numel(), "moe_align: {} weights for {} ids",
            topk_weights.numel(), topk_ids.numel());
  MSI_CHECK(top_k > 0 && layout.token_rows.cols() == top_k,
            "moe_align: top_k={} but token_rows has {} columns", top_k, layout.token_rows.cols());
  const int64_t n_experts = layout.slot_of_expert.numel();
  MSI_CHECK(n_experts > 0 && n_experts <= cuda::kMoeMaxExperts, "cuda: moe n_experts={} (1..{})",
            n_experts, cuda::kMoeMaxExperts);
  MSI_CHECK(n * top_k <= INT32_MAX / 2, "moe_align: {} rows", n * top_k);
  check_layout(layout, n * top_k);
  const bool replicas = layout.expert_replica.data != nullptr;
  if (replicas) {
    check_dtype(layout.expert_replica, DType::kI32, "moe expert_replica");
    MSI_CHECK(layout.expert_replica.numel() == 2 * n_experts, "moe_align: expert_replica has {} elements, want {}",
              layout.expert_replica.numel(), 2 * n_experts);
  }
  make_current();
  cuda::launch_moe_align(
      ci32(topk_ids), topk_weights.as<float>(), n, top_k, ci32(layout.slot_of_expert),
      replicas ? ci32(layout.expert_replica) : nullptr, n_experts,
      layout.n_slots, i32(layout.expert_offsets), i32(layout.row_token),
      layout.row_gate.as<float>(), i32(layout.token_rows), i32(layout.tiles), stream_);
}

void CudaBackend::moe_gate_up(const Tensor& x, const Tensor& w13, const MoeLayout& layout,
                              const Tensor& act) {
  check_dtype(x, DType::kBF16, "moe_gate_up x");
  check_dtype(w13, DType::kBF16, "moe_gate_up w13");
  check_dtype(act, DType::kBF16, "moe_gate_up act");
  MSI_CHECK(w13.ndim == 3 && w13.dim(0) == layout.n_slots && w13.dim(1) % 2 == 0 &&
                w13.dim(2) == x.cols(),
            "moe_gate_up: w13 must be [n_slots={}, 2 * inter, hidden={}]", layout.n_slots,
            x.cols());
  const int64_t n = x.rows(), hidden = x.cols(), inter = w13.dim(1) / 2;
  const int64_t max_rows = n * layout.token_rows.cols();
  MSI_CHECK(act.cols() == inter && act.rows() >= max_rows,
            "moe_gate_up: act is [{}, {}], want [≥ {}, {}]", act.rows(), act.cols(), max_rows,
            inter);
  check_dims(hidden, inter, "moe_gate_up");
  check_layout(layout, max_rows);
  make_current();
  cuda::launch_moe_gate_up(cbf(x), cbf(w13), ci32(layout.tiles), ci32(layout.expert_offsets),
                           ci32(layout.row_token), bf(act), max_rows, layout.n_slots, hidden, inter,
                           stream_);
}

void CudaBackend::moe_down(const Tensor& act, const Tensor& w2, const MoeLayout& layout,
                           const Tensor& y) {
  check_dtype(act, DType::kBF16, "moe_down act");
  check_dtype(w2, DType::kBF16, "moe_down w2");
  check_dtype(y, DType::kBF16, "moe_down y");
  MSI_CHECK(w2.ndim == 3 && w2.dim(0) == layout.n_slots && w2.dim(2) == act.cols(),
            "moe_down: w2 must be [n_slots={}, hidden, inter={}]", layout.n_slots, act.cols());
  const int64_t hidden = w2.dim(1), inter = w2.dim(2);
  MSI_CHECK(y.cols() == hidden, "moe_down: y has {} columns, want hidden={}", y.cols(), hidden);
  check_dims(hidden, inter, "moe_down");
  // NOTE: the rows act and y can hold are the only host-known bound on the grouped rows here
  // (n is not an argument): pass views of n * top_k rows to keep the grid tight. Blocks past the
  // device-side tile count exit at once.
  const int64_t max_rows = std::min({act.rows(), y.rows(), layout.row_token.numel()});
  check_layout(layout, max_rows);
  make_current();
  cuda::launch_moe_down(cbf(act), cbf(w2), ci32(layout.tiles), ci32(layout.expert_offsets),
                        layout.row_gate.as<float>(), bf(y), max_rows, layout.n_slots, hidden, inter,
                        stream_);
}

void CudaBackend::moe_combine(const Tensor& y, const MoeLayout& layout, const Tensor& out) {
  check_dtype(y, DType::kBF16, "moe_combine y");
  check_dtype(out, DType::kBF16, "moe_combine out");
  check_dtype(layout.token_rows, DType::kI32, "moe token_rows");
  const int64_t n = out.rows(), hidden = out.cols(), top_k = layout.token_rows.cols();
  MSI_CHECK(y.cols() == hidden, "moe_combine: y has {} columns, out {}", y.cols(), hidden);
  MSI_CHECK(hidden % 16 == 0, "cuda: moe_combine needs hidden % 16 == 0 (hidden={})", hidden);
  MSI_CHECK(layout.token_rows.numel() >= n * top_k, "moe_combine: token_rows holds {} < {}",
            layout.token_rows.numel(), n * top_k);
  make_current();
  cuda::launch_moe_combine(cbf(y), ci32(layout.token_rows), bf(out), n, top_k, hidden, stream_);
}

}  // namespace msi

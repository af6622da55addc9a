// CpuBackend's MoE ops: the exact oracle for the grouped layout. moe_align is a stable counting
// sort of the (token, j) pairs by slot; the expert GEMMs run per slot with BLAS sgemm on the
// slot's contiguous grouped rows (gate_up gathers its x rows first). The tile list is not used
// here and is left untouched.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/ops.h"

namespace msi {
namespace {

void check_f32(const Tensor& t, const char* what) {
  MSI_CHECK(t.dtype == DType::kF32, "cpu: {} must be F32, is {}", what, dtype_name(t.dtype));
}
void check_i32(const Tensor& t, const char* what) {
  MSI_CHECK(t.dtype == DType::kI32, "cpu: {} must be I32, is {}", what, dtype_name(t.dtype));
}

// The grouped-row count moe_align wrote, after checking the offsets are a valid partition.
int64_t grouped_rows(const MoeLayout& l) {
  check_i32(l.expert_offsets, "moe expert_offsets");
  MSI_CHECK(l.n_slots > 0 && l.expert_offsets.numel() >= l.n_slots + 1,
            "moe: expert_offsets has {} elements for n_slots={}", l.expert_offsets.numel(),
            l.n_slots);
  const int32_t* off = l.expert_offsets.as<int32_t>();
  MSI_CHECK(off[0] == 0, "moe: expert_offsets[0]={} (run moe_align first)", off[0]);
  for (int64_t s = 0; s < l.n_slots; ++s) {
    MSI_CHECK(off[s + 1] >= off[s], "moe: expert_offsets decrease at slot {}", s);
  }
  return off[l.n_slots];
}

// Scratch reused across calls, so the steady state does not allocate once it has grown.
std::vector<float>& scratch(int which, size_t n) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& b = buffers[which];
  if (b.size() < n) b.resize(n);
  return b;
}

}  // namespace

void CpuBackend::moe_align(const Tensor& topk_ids, const Tensor& topk_weights,
                           const MoeLayout& layout) {
  check_i32(topk_ids, "moe topk_ids");
  check_f32(topk_weights, "moe topk_weights");
  check_i32(layout.slot_of_expert, "moe slot_of_expert");
  check_i32(layout.expert_offsets, "moe expert_offsets");
  check_i32(layout.row_token, "moe row_token");
  check_f32(layout.row_gate, "moe row_gate");
  check_i32(layout.token_rows, "moe token_rows");
  const int64_t n = topk_ids.rows(), top_k = topk_ids.cols(), n_pairs = n * top_k;
  const int64_t n_slots = layout.n_slots, n_experts = layout.slot_of_expert.numel();
  MSI_CHECK(topk_weights.numel() == topk_ids.numel(), "moe_align: {} weights for {} ids",
            topk_weights.numel(), topk_ids.numel());
  MSI_CHECK(top_k > 0 && layout.token_rows.cols() == top_k,
            "moe_align: top_k={} but token_rows has {} columns", top_k, layout.token_rows.cols());
  MSI_CHECK(n_slots > 0 && layout.expert_offsets.numel() >= n_slots + 1,
            "moe_align: expert_offsets has {} elements for n_slots={}",
            layout.expert_offsets.numel(), n_slots);
  MSI_CHECK(
      layout.row_token.numel() >= n_pairs && layout.row_gate.numel() >= n_pairs &&
          layout.token_rows.numel() >= n_pairs,
      "moe_align: layout holds {} rows, want n * top_k = {}",
      std::min({layout.row_token.numel(), layout.row_gate.numel(), layout.token_rows.numel()}),
      n_pairs);

  const int32_t* ids = topk_ids.as<int32_t>();
  const float* weights = topk_weights.as<float>();
  const int32_t* slot_of = layout.slot_of_expert.as<int32_t>();
  int32_t* off = layout.expert_offsets.as<int32_t>();
  int32_t* row_token = layout.row_token.as<int32_t>();
  float* row_gate = layout.row_gate.as<float>();
  int32_t* token_rows = layout.token_rows.as<int32_t>();

  const int32_t* replica = nullptr;  // [n_experts, 2]: (replicas, this worker's replica)
  if (layout.expert_replica.data != nullptr) {
    check_i32(layout.expert_replica, "moe expert_replica");
    MSI_CHECK(layout.expert_replica.numel() == 2 * n_experts, "moe_align: expert_replica has {} elements, want {}",
              layout.expert_replica.numel(), 2 * n_experts);
    replica = layout.expert_replica.as<int32_t>();
  }

  // A negative id is a token the router left unrouted (skipped); anything else must be a real
  // expert whose slot is −1 (skipped) or in range. A replicated expert keeps only the tokens
  // t with t % replicas == this worker's replica (ExpertPlacement::route's rule).
  auto slot_of_pair = [&](int64_t p) -> int64_t {
    const int32_t e = ids[p];
    if (e < 0) return -1;
    MSI_CHECK(e < n_experts, "moe_align: expert id {} ≥ n_experts={}", e, n_experts);
    const int32_t s = slot_of[e];
    MSI_CHECK(s >= -1 && s < n_slots, "moe_align: slot_of_expert[{}]={} (n_slots={})", e, s,
              n_slots);
    if (replica != nullptr && replica[2 * e] > 1 && (p / top_k) % replica[2 * e] != replica[2 * e + 1]) return -1;
    return s;
  };

  std::fill(off, off + n_slots + 1, 0);
  for (int64_t p = 0; p < n_pairs; ++p) {
    const int64_t s = slot_of_pair(p);
    if (s >= 0) ++off[s + 1];
  }
  for (int64_t s = 0; s < n_slots; ++s) off[s + 1] += off[s];
  // Placing pairs in (token, j) order behind a per-slot cursor keeps each slot's rows stable.
  thread_local std::vector<int32_t> next;
  next.assign(off, off + n_slots);
  for (int64_t p = 0; p < n_pairs; ++p) {
    const int64_t s = slot_of_pair(p);
    if (s < 0) {
      token_rows[p] = -1;
      continue;
    }
    const int32_t row = next[s]++;
    row_token[row] = static_cast<int32_t>(p / top_k);
    row_gate[row] = weights[p];
    token_rows[p] = row;
  }
}

void CpuBackend::moe_gate_up(const Tensor& x, const Tensor& w13, const MoeLayout& layout,
                             const Tensor& act) {
  check_f32(x, "moe_gate_up x");
  check_f32(w13, "moe_gate_up w13");
  check_f32(act, "moe_gate_up act");
  check_i32(layout.row_token, "moe row_token");
  MSI_CHECK(w13.ndim == 3 && w13.dim(0) == layout.n_slots && w13.dim(1) % 2 == 0 &&
                w13.dim(2) == x.cols(),
            "moe_gate_up: w13 must be [n_slots={}, 2 * inter, hidden={}]", layout.n_slots,
            x.cols());
  const int64_t n = x.rows(), hidden = x.cols(), inter = w13.dim(1) / 2;
  const int64_t rows = grouped_rows(layout);
  MSI_CHECK(rows <= n * layout.token_rows.cols(), "moe_gate_up: {} grouped rows for {} tokens",
            rows, n);
  MSI_CHECK(act.cols() == inter && act.rows() >= rows,
            "moe_gate_up: act is [{}, {}], want [≥ {}, {}]", act.rows(), act.cols(), rows, inter);
  const int32_t* off = layout.expert_offsets.as<int32_t>();
  const int32_t* row_token = layout.row_token.as<int32_t>();
  const float* xs = x.as<float>();
  for (int64_t s = 0; s < layout.n_slots; ++s) {
    const int64_t begin = off[s], m = off[s + 1] - off[s];
    if (m == 0) continue;
    // x rows of this slot [m, hidden], then h = x_s · w13_sᵀ [m, 2 * inter] (gate | up).
    float* xg = scratch(0, static_cast<size_t>(m * hidden)).data();
    for (int64_t i = 0; i < m; ++i) {
      const int32_t t = row_token[begin + i];
      MSI_CHECK(t >= 0 && t < n, "moe_gate_up: row_token[{}]={} (n={})", begin + i, t, n);
      std::copy(xs + t * hidden, xs + (t + 1) * hidden, xg + i * hidden);
    }
    float* h = scratch(1, static_cast<size_t>(m * 2 * inter)).data();
    cpu::linear(xg, w13.as<float>() + s * 2 * inter * hidden, nullptr, h, m, 2 * inter, hidden);
    for (int64_t i = 0; i < m; ++i) {
      cpu::swiglu(h + i * 2 * inter, h + i * 2 * inter + inter,
                  act.as<float>() + (begin + i) * inter, inter);
    }
  }
}

void CpuBackend::moe_down(const Tensor& act, const Tensor& w2, const MoeLayout& layout,
                          const Tensor& y) {
  check_f32(act, "moe_down act");
  check_f32(w2, "moe_down w2");
  check_f32(y, "moe_down y");
  check_f32(layout.row_gate, "moe row_gate");
  MSI_CHECK(w2.ndim == 3 && w2.dim(0) == layout.n_slots && w2.dim(2) == act.cols(),
            "moe_down: w2 must be [n_slots={}, hidden, inter={}]", layout.n_slots, act.cols());
  const int64_t hidden = w2.dim(1), inter = w2.dim(2);
  const int64_t rows = grouped_rows(layout);
  MSI_CHECK(act.rows() >= rows && y.rows() >= rows && y.cols() == hidden,
            "moe_down: act has {} rows, y is [{}, {}]; want ≥ {} rows and hidden={}", act.rows(),
            y.rows(), y.cols(), rows, hidden);
  const int32_t* off = layout.expert_offsets.as<int32_t>();
  const float* gate = layout.row_gate.as<float>();
  for (int64_t s = 0; s < layout.n_slots; ++s) {
    const int64_t begin = off[s], m = off[s + 1] - off[s];
    if (m == 0) continue;
    // The slot's act rows are contiguous: y[begin, begin + m) = act · w2_sᵀ, then the gates.
    float* ys = y.as<float>() + begin * hidden;
    cpu::linear(act.as<float>() + begin * inter, w2.as<float>() + s * hidden * inter, nullptr, ys,
                m, hidden, inter);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t c = 0; c < hidden; ++c) ys[i * hidden + c] *= gate[begin + i];
    }
  }
}

void CpuBackend::moe_combine(const Tensor& y, const MoeLayout& layout, const Tensor& out) {
  check_f32(y, "moe_combine y");
  check_f32(out, "moe_combine out");
  check_i32(layout.token_rows, "moe token_rows");
  const int64_t n = out.rows(), hidden = out.cols(), top_k = layout.token_rows.cols();
  MSI_CHECK(y.cols() == hidden, "moe_combine: y has {} columns, out {}", y.cols(), hidden);
  MSI_CHECK(layout.token_rows.numel() >= n * top_k, "moe_combine: token_rows holds {} < {}",
            layout.token_rows.numel(), n * top_k);
  const int32_t* token_rows = layout.token_rows.as<int32_t>();
  float* sum = scratch(0, static_cast<size_t>(hidden)).data();
  for (int64_t t = 0; t < n; ++t) {
    std::fill(sum, sum + hidden, 0.0f);
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t r = token_rows[t * top_k + j];
      if (r < 0) continue;
      MSI_CHECK(r < y.rows(), "moe_combine: token_rows[{}, {}]={} ≥ y rows {}", t, j, r, y.rows());
      const float* yr = y.as<float>() + static_cast<int64_t>(r) * hidden;
      for (int64_t c = 0; c < hidden; ++c) sum[c] += yr[c];
    }
    float* o = out.as<float>() + t * hidden;
    for (int64_t c = 0; c < hidden; ++c) o[c] += sum[c];
  }
}

}  // namespace msi

// Backend: the compute device seen by the roles. One implementation per device type
// (backend/cpu, backend/cuda); backend/registry.cc is the only place that knows which exist.
//
// Every op takes Tensor views in the backend's compute dtype (F32 on the CPU backend) plus
// int32 index tensors that the host planned for the step. Ops never allocate and never block
// the host except copy_to_host. A Backend is used by one thread at a time.
#pragma once

#include <functional>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "core/status.h"
#include "model/safetensors.h"

namespace msi {

// The device-side routing layout of one MoE unit, written by Backend::moe_align and read by the
// grouped expert ops. Every tensor lives on the backend's device; the role allocates them once at
// start-up with the sizes below (`max_tokens` tokens per unit at most).
//
// Slots are the experts this layout groups rows for, in order: the experts held locally (one GPU
// running all of them), or — for a dispatch to several expert workers — destination-major, so that
// one destination's rows are contiguous. slot_of_expert maps a global expert id to its slot, or −1
// for an expert whose tokens are not grouped here (their (token, j) pairs are skipped).
struct MoeLayout {
  int64_t n_slots = 0;
  Tensor slot_of_expert;  // [n_experts] i32, input: filled once at start-up
  Tensor expert_offsets;  // [n_slots + 1] i32: the rows of slot s are [off[s], off[s + 1])
  Tensor row_token;       // [max_tokens * top_k] i32: the token row each grouped row comes from
  Tensor row_gate;        // [max_tokens * top_k] f32: its gate weight
  Tensor token_rows;      // [max_tokens, top_k] i32: grouped row of (token, j); −1 if skipped
  Tensor tiles;           // [moe_tile_capacity(max_tokens * top_k, n_slots)] i32: the grouped
                          // GEMMs' work list, in a backend-defined encoding (unused on the CPU)
  // Input, may be empty: [n_experts, 2] i32 (replicas, this worker's replica index): a worker holding a
  // replicated expert groups only the pairs (t, j) with t % replicas == its index, so that each
  // pair is computed by exactly one replica (ExpertPlacement::route's rule).
  Tensor expert_replica;
};

// Grouped rows are tiled in units of kMoeTileRows for the work list.
inline constexpr int64_t kMoeTileRows = 64;
inline int64_t moe_tile_capacity(int64_t max_rows, int64_t n_slots) {
  return 2 * ((max_rows + kMoeTileRows - 1) / kMoeTileRows + n_slots) + 2;
}

// Device-timed marks on a backend's stream, for per-stage timings (msinfer bench).
class DeviceClock {
 public:
  virtual ~DeviceClock() = default;
  // Enqueues a timestamp into mark `i` (i < the count given to make_clock).
  virtual void record(int i) = 0;
  // Milliseconds from mark a to mark b; waits until both have been reached.
  virtual double elapsed_ms(int a, int b) = 0;
};

// A point in a backend's stream that another backend's stream can wait for (a CUDA event), so two
// devices' streams order their work without the host waiting. Recorded by the backend that made it.
class DeviceEvent {
 public:
  virtual ~DeviceEvent() = default;
};

// A recorded sequence of a backend's ops, replayed as one launch (a CUDA graph).
class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  // Enqueues the recorded ops again, with the same arguments (pointers, shapes) as recorded.
  virtual void launch() = 0;
};

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  int64_t max_blocks_per_seq = 0;
  float scale = 1.0f;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  // The dtype activations and weights are held in (F32 on CPU).
  virtual DType compute_dtype() const = 0;

  // ---- memory (start-up only; never in the steady state) ----
  virtual OwnedTensor alloc(DType dtype, std::initializer_list<int64_t> shape) = 0;
  // Copies a host tensor (F32/F16/BF16, 1-D or 2-D) into a new tensor in the compute dtype.
  OwnedTensor upload_weight(const HostTensorView& host) {
    MSI_CHECK(host.shape.size() == 1 || host.shape.size() == 2, "weights are 1-D or 2-D");
    OwnedTensor t = host.shape.size() == 1 ? alloc(compute_dtype(), {host.shape[0]})
                                           : alloc(compute_dtype(), {host.shape[0], host.shape[1]});
    upload_weight_into(t.tensor, host);
    return t;
  }
  // Copies a host tensor (F32/F16/BF16) into `dst` (compute dtype, same element count), e.g. one
  // expert's slice of a stacked [n_experts, rows, cols] weight. Blocks until done.
  virtual void upload_weight_into(const Tensor& dst, const HostTensorView& host) = 0;
  // Fills `dst` (compute dtype) with model/dummy.h's deterministic values: element i is
  // bf16(center + half_width * (2u − 1)), u = (splitmix64(stream + i * golden) >> 40) · 2⁻²⁴,
  // generated on the device (dummy weights need no host memory). Equal to the host generator's.
  virtual void fill_dummy(const Tensor& dst, uint64_t stream, float center, float half_width) = 0;
  virtual std::unique_ptr<DeviceClock> make_clock(int n_marks) = 0;
  // Blocks until every op enqueued so far is done.
  virtual void synchronize() = 0;
  // Cross-device ordering. record_event marks everything enqueued so far on this backend's stream;
  // wait_event makes this backend's later ops wait until `event` (made by any backend of this
  // process) has been reached — its most recent record at the time of the call. On the CPU both
  // are no-ops (every op has finished when it returns).
  virtual std::unique_ptr<DeviceEvent> make_event() = 0;
  virtual void record_event(DeviceEvent& event) = 0;
  virtual void wait_event(DeviceEvent& event) = 0;
  // Lets this backend's kernels read and write `other`'s memory directly (CUDA peer access over
  // NVLink or PCIe). Unavailable when the devices cannot; a no-op on the same device or the CPU.
  virtual Status enable_peer_access(const Backend& other) = 0;

  // ---- sharing with other processes of this host (CUDA IPC); start-up only ----
  // An event another process can wait on (export_event). Heavier than make_event's: use it only
  // for hand-offs between processes.
  virtual std::unique_ptr<DeviceEvent> make_shared_event() { return make_event(); }
  // An opaque handle to `allocation` (a tensor whose data is the start of an alloc() buffer, and
  // the whole of it) that import_memory of another process maps. Unimplemented where the device
  // cannot share memory between processes (the CPU).
  virtual Result<std::vector<std::byte>> export_memory(const Tensor& allocation) {
    return error(StatusCode::kUnimplemented, "{} cannot share device memory with other processes", name());
  }
  // Maps another process's exported allocation into this one; the mapping lasts as long as this
  // backend. Returns its base address here.
  virtual Result<void*> import_memory(std::span<const std::byte> handle) {
    return error(StatusCode::kUnimplemented, "{} cannot map another process's memory", name());
  }
  // A handle to an event from make_shared_event(), for import_event in another process.
  virtual Result<std::vector<std::byte>> export_event(DeviceEvent& event) {
    return error(StatusCode::kUnimplemented, "{} cannot share events with other processes", name());
  }
  // Opens another process's event: wait_event on it waits for that process's latest record.
  virtual Result<std::unique_ptr<DeviceEvent>> import_event(std::span<const std::byte> handle) {
    return error(StatusCode::kUnimplemented, "{} cannot open another process's events", name());
  }
  // Records the ops `enqueue` issues (without running them) into a graph; nullptr when the
  // backend has no graphs (the CPU). `enqueue` must not block the host or copy to or from it.
  virtual std::unique_ptr<DeviceGraph> capture(const std::function<void()>& enqueue) { return nullptr; }
  virtual void copy_from_host(const Tensor& dst, const void* src, size_t nbytes) = 0;
  // Blocks until the bytes are on the host.
  virtual void copy_to_host(void* dst, const Tensor& src, size_t nbytes) = 0;

  // ---- ops; shapes are [rows, cols] unless noted ----
  // out[n, d] = table[ids[n]]
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  virtual void rms_norm(const Tensor& x, const Tensor& w, const Tensor& out, float eps) = 0;
  // residual += x; out = rms_norm(residual)
  virtual void add_rms_norm(const Tensor& residual, const Tensor& x, const Tensor& w,
                            const Tensor& out, float eps) = 0;
  // out[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]; bias may be empty)
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) = 0;
  // x: [n_tokens, n_heads * head_dim], rotated in place.
  virtual void rope(const Tensor& x, const Tensor& positions, int64_t n_heads, int64_t head_dim,
                    double theta) = 0;
  // k, v: [n_tokens, kv_dim] into caches [n_slots, kv_dim] at slot_mapping[n_tokens].
  virtual void kv_append(const Tensor& k, const Tensor& v, const Tensor& k_cache,
                         const Tensor& v_cache, const Tensor& slot_mapping) = 0;
  // q, out: [n_tokens, n_heads * head_dim]; token_seq/token_pos: [n_tokens];
  // block_tables: [n_seqs, max_blocks_per_seq].
  virtual void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                               const Tensor& out, const Tensor& token_seq, const Tensor& token_pos,
                               const Tensor& block_tables, const AttentionShape& shape) = 0;
  // logits [n, n_experts] → ids [n, top_k] int32, weights [n, top_k].
  virtual void router_topk(const Tensor& logits, const Tensor& ids, const Tensor& weights,
                           bool normalize) = 0;
  // out[m, hidden] = down(silu(gate(x)) * up(x)); scratch holds ≥ 2 * m * inter elements.
  virtual void swiglu_mlp(const Tensor& x, const Tensor& gate_w, const Tensor& up_w,
                          const Tensor& down_w, const Tensor& out, const Tensor& scratch) = 0;
  // out[m, d] += sigmoid(gate_logit[m, 1]) * y[m, d]
  virtual void add_sigmoid_scaled(const Tensor& out, const Tensor& gate_logit, const Tensor& y) = 0;
  // out[m, d] += y[m, d]
  virtual void add(const Tensor& out, const Tensor& y) = 0;
  // out[i, :] = src[rows[i], :] for i < n
  virtual void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) = 0;
  // out[rows[i], :] += scale[i] * src[i, :] for i < n
  virtual void scatter_add_rows(const Tensor& src, const Tensor& rows, const Tensor& scale,
                                const Tensor& out) = 0;
  virtual void fill_zero(const Tensor& t) = 0;
  // ids[i] = argmax_j logits[i, j] (F32 logits; ties go to the lowest j, as the greedy sampler).
  virtual void argmax_rows(const Tensor& logits, const Tensor& ids) = 0;
  // Samples one token per row of logits [n, vocab] F32 into ids [n] I32. params [n, 4] F32 holds
  // per row (temperature, top_p, top_k, u): temperature 0 is greedy (as argmax_rows); otherwise
  // the candidates are the top_k (≤ 0: all) highest of logits / temperature — ties broken
  // toward the lower id — then, when top_p < 1, the smallest prefix of them in descending order
  // of probability whose mass reaches top_p of theirs (at least one); the token is drawn by
  // inverse CDF with the uniform u ∈ [0, 1) over the kept candidates in ascending id order.
  // The host draws u (so a request's seed decides its tokens); the rest runs on the device.
  virtual void sample_rows(const Tensor& logits, const Tensor& params, const Tensor& ids) = 0;

  // ---- MoE: routing layout and grouped expert MLPs (see MoeLayout) ----
  // From topk_ids [n, top_k] (global expert ids) and topk_weights [n, top_k] f32, groups the
  // (token, j) pairs by slot — slot order, then token order, then j — and writes every field of
  // `layout` except slot_of_expert. n ≤ the layout's max_tokens.
  virtual void moe_align(const Tensor& topk_ids, const Tensor& topk_weights,
                         const MoeLayout& layout) = 0;
  // act[r] = silu(x[row_token[r]] · gate_sᵀ) ⊙ (x[row_token[r]] · up_sᵀ) for every grouped row r
  // of every slot s. x [n, hidden] (the tokens moe_align saw); w13 [n_slots, 2 * inter, hidden]
  // (slot s: its gate rows, then its up rows); act [≥ n * top_k, inter] (rows past the grouped
  // count are left alone).
  virtual void moe_gate_up(const Tensor& x, const Tensor& w13, const MoeLayout& layout,
                           const Tensor& act) = 0;
  // y[r] = row_gate[r] · (act[r] · down_sᵀ) for every grouped row r of every slot s.
  // act [R, inter] and y [R, hidden] with R ≥ the grouped rows (n * top_k bounds them);
  // w2 [n_slots, hidden, inter].
  virtual void moe_down(const Tensor& act, const Tensor& w2, const MoeLayout& layout,
                        const Tensor& y) = 0;
  // out[t] += Σ_j y[token_rows[t, j]] over j = 0..top_k−1 with token_rows[t, j] ≥ 0, summed in
  // fp32 in j order, then added to out. out [n, hidden].
  virtual void moe_combine(const Tensor& y, const MoeLayout& layout, const Tensor& out) = 0;
  // Expert-load statistics: counts[e] += |{(i, j) : i < n_rows, topk_ids[i, j] == e}| for every
  // e < n_experts = counts.numel(). topk_ids [n, top_k] i32 (global expert ids; ids outside
  // [0, n_experts) are ignored); counts i32, accumulated in place. n_rows = n when n_valid is
  // empty (data == nullptr), else clamp(*n_valid, 0, n) with n_valid an i32 [≥ 1] read on the
  // device — so a graph recorded for a padded batch counts only the rows of each replay.
  // Never allocates, never blocks.
  virtual void count_experts(const Tensor& topk_ids, const Tensor& n_valid, const Tensor& counts) = 0;
  // dst = src (same byte size), device to device.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
};

}  // namespace msi

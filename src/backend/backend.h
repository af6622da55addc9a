// Backend: the compute device seen by the roles. One implementation per device type
// (backend/cpu, backend/cuda); backend/registry.cc is the only place that knows which exist.
//
// Every op takes Tensor views in the backend's compute dtype (F32 on the CPU backend) plus
// int32 index tensors that the host planned for the step. Ops never allocate and never block
// the host except copy_to_host. A Backend is used by one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "backend/tensor.h"
#include "core/status.h"
#include "model/safetensors.h"

namespace msi {

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
  // Copies a host tensor (F32/F16/BF16) into a new tensor in the compute dtype.
  virtual OwnedTensor upload_weight(const HostTensorView& host) = 0;
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
  // dst = src (same byte size), device to device.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
};

}  // namespace msi

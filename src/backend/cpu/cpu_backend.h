// CpuBackend: the reference backend. F32 activations and weights (BF16/F16 converted at load),
// each op a call into backend/cpu/ops.h. Deterministic for a given batch layout.
#pragma once

#include "backend/backend.h"

namespace msi {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device{DeviceKind::kCpu, 0}; }
  DType compute_dtype() const override { return DType::kF32; }

  OwnedTensor alloc(DType dtype, std::initializer_list<int64_t> shape) override;
  void upload_weight_into(const Tensor& dst, const HostTensorView& host) override;
  void fill_dummy(const Tensor& dst, uint64_t stream, float center, float half_width) override;
  std::unique_ptr<DeviceClock> make_clock(int n_marks) override;
  void synchronize() override {}
  std::unique_ptr<DeviceEvent> make_event() override { return std::make_unique<DeviceEvent>(); }
  void record_event(DeviceEvent&) override {}
  void wait_event(DeviceEvent&) override {}
  Status enable_peer_access(const Backend& other) override;
  void copy_from_host(const Tensor& dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const Tensor& src, size_t nbytes) override;

  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, const Tensor& out, float eps) override;
  void add_rms_norm(const Tensor& residual, const Tensor& x, const Tensor& w, const Tensor& out,
                    float eps) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  void rope(const Tensor& x, const Tensor& positions, int64_t n_heads, int64_t head_dim,
            double theta) override;
  void kv_append(const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
                 const Tensor& slot_mapping) override;
  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                       const Tensor& out, const Tensor& token_seq, const Tensor& token_pos,
                       const Tensor& block_tables, const AttentionShape& shape) override;
  void router_topk(const Tensor& logits, const Tensor& ids, const Tensor& weights,
                   bool normalize) override;
  void swiglu_mlp(const Tensor& x, const Tensor& gate_w, const Tensor& up_w, const Tensor& down_w,
                  const Tensor& out, const Tensor& scratch) override;
  void add_sigmoid_scaled(const Tensor& out, const Tensor& gate_logit, const Tensor& y) override;
  void add(const Tensor& out, const Tensor& y) override;
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) override;
  void scatter_add_rows(const Tensor& src, const Tensor& rows, const Tensor& scale,
                        const Tensor& out) override;
  void fill_zero(const Tensor& t) override;
  void argmax_rows(const Tensor& logits, const Tensor& ids) override;
  // backend/{cpu,cuda}/sample*: see Backend::sample_rows.
  void sample_rows(const Tensor& logits, const Tensor& params, const Tensor& ids) override;
  // MoE ops: backend/cpu/moe.cc.
  void moe_align(const Tensor& topk_ids, const Tensor& topk_weights,
                 const MoeLayout& layout) override;
  void moe_gate_up(const Tensor& x, const Tensor& w13, const MoeLayout& layout,
                   const Tensor& act) override;
  void moe_down(const Tensor& act, const Tensor& w2, const MoeLayout& layout,
                const Tensor& y) override;
  void moe_combine(const Tensor& y, const MoeLayout& layout, const Tensor& out) override;
  // backend/cpu/expert_count.cc.
  void count_experts(const Tensor& topk_ids, const Tensor& n_valid, const Tensor& counts) override;
  void copy(const Tensor& dst, const Tensor& src) override;
};

}  // namespace msi

// CudaBackend: the Backend on one NVIDIA GPU. Activations and weights are bf16 (compute_dtype),
// index tensors int32; router logits, top-k weights, scatter scales and the final logits are F32
// where the roles allocate them so (router_logits_, topk_weights_, logits_). Math is fp32 inside
// every kernel; GEMMs are cuBLAS with bf16 inputs and fp32 accumulation.
//
// Owns one CUDA stream and one cuBLAS handle (bound to that stream, with a fixed workspace), on
// device `index`. Every op is enqueued on the stream and returns without waiting; only
// copy_to_host (and the start-up calls alloc / upload_weight) block the host. Buffers from alloc
// and upload_weight are plain cudaMalloc memory, freed by their deleter; they may outlive the
// backend. Thread-compatible: used by one thread at a time (each call makes the device current).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/status.h"

// Opaque handles, so this header does not pull in the CUDA headers.
typedef struct CUstream_st* cudaStream_t;
typedef struct cublasContext* cublasHandle_t;

namespace msi {

class CudaBackend final : public Backend {
 public:
  // Fails with kUnavailable when there is no CUDA device `index` (or no driver), and with
  // kInvalidArgument when index is negative.
  static Result<std::unique_ptr<Backend>> create(int index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;
  Device device() const override { return Device{DeviceKind::kCuda, index_}; }
  DType compute_dtype() const override { return DType::kBF16; }

  // Start-up only: cudaMalloc (zero-filled on the stream). Aborts when out of device memory.
  OwnedTensor alloc(DType dtype, std::initializer_list<int64_t> shape) override;
  // Converts to bf16 on the host in chunks and copies; blocks until the copy is done.
  void upload_weight_into(const Tensor& dst, const HostTensorView& host) override;
  void fill_dummy(const Tensor& dst, uint64_t stream, float center, float half_width) override;
  // cudaEvents recorded on the stream.
  std::unique_ptr<DeviceClock> make_clock(int n_marks) override;
  void synchronize() override;
  std::unique_ptr<DeviceEvent> make_event() override;
  void record_event(DeviceEvent& event) override;
  void wait_event(DeviceEvent& event) override;
  // cudaDeviceEnablePeerAccess from this device to other's (already enabled: fine).
  Status enable_peer_access(const Backend& other) override;
  // CUDA IPC (backend/cuda/cuda_backend_ipc.cc).
  std::unique_ptr<DeviceEvent> make_shared_event() override;
  Result<std::vector<std::byte>> export_memory(const Tensor& allocation) override;
  Result<void*> import_memory(std::span<const std::byte> handle) override;
  Result<std::vector<std::byte>> export_event(DeviceEvent& event) override;
  Result<std::unique_ptr<DeviceEvent>> import_event(std::span<const std::byte> handle) override;
  // Stream capture (thread-local mode) into an instantiated CUDA graph.
  std::unique_ptr<DeviceGraph> capture(const std::function<void()>& enqueue) override;
  // Enqueued on the stream. NOTE: `src` is pageable host memory in every caller, for which the
  // runtime stages the bytes before returning, so the caller may reuse `src` at once. Pinned
  // memory would not be staged: keep it unchanged until the stream has passed this point.
  void copy_from_host(const Tensor& dst, const void* src, size_t nbytes) override;
  // The one blocking op: enqueues the copy, then synchronizes the stream.
  void copy_to_host(void* dst, const Tensor& src, size_t nbytes) override;

  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, const Tensor& out, float eps) override;
  void add_rms_norm(const Tensor& residual, const Tensor& x, const Tensor& w, const Tensor& out,
                    float eps) override;
  // x, w, bias bf16; out bf16 or F32 (router logits, lm head).
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  void rope(const Tensor& x, const Tensor& positions, int64_t n_heads, int64_t head_dim,
            double theta) override;
  void kv_append(const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
                 const Tensor& slot_mapping) override;
  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                       const Tensor& out, const Tensor& token_seq, const Tensor& token_pos,
                       const Tensor& block_tables, const AttentionShape& shape) override;
  // logits F32, ids I32, weights F32.
  void router_topk(const Tensor& logits, const Tensor& ids, const Tensor& weights,
                   bool normalize) override;
  void swiglu_mlp(const Tensor& x, const Tensor& gate_w, const Tensor& up_w, const Tensor& down_w,
                  const Tensor& out, const Tensor& scratch) override;
  void add_sigmoid_scaled(const Tensor& out, const Tensor& gate_logit, const Tensor& y) override;
  void add(const Tensor& out, const Tensor& y) override;
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) override;
  // scale F32. Requires distinct rows within one call (see backend/cuda/moe.cuh).
  void scatter_add_rows(const Tensor& src, const Tensor& rows, const Tensor& scale,
                        const Tensor& out) override;
  void fill_zero(const Tensor& t) override;
  void argmax_rows(const Tensor& logits, const Tensor& ids) override;
  // backend/{cpu,cuda}/sample*: see Backend::sample_rows.
  void sample_rows(const Tensor& logits, const Tensor& params, const Tensor& ids) override;
  // MoE ops: backend/cuda/cuda_backend_moe.cc.
  void moe_align(const Tensor& topk_ids, const Tensor& topk_weights,
                 const MoeLayout& layout) override;
  void moe_gate_up(const Tensor& x, const Tensor& w13, const MoeLayout& layout,
                   const Tensor& act) override;
  void moe_down(const Tensor& act, const Tensor& w2, const MoeLayout& layout,
                const Tensor& y) override;
  void moe_combine(const Tensor& y, const MoeLayout& layout, const Tensor& out) override;
  // backend/cuda/cuda_backend_expert_count.cc: one single-block kernel (expert_count.cuh).
  void count_experts(const Tensor& topk_ids, const Tensor& n_valid, const Tensor& counts) override;
  void copy(const Tensor& dst, const Tensor& src) override;

  cudaStream_t stream() const { return stream_; }

 private:
  explicit CudaBackend(int index) : index_(index) {}
  void make_current() const;
  void close_imported();  // unmaps import_memory's mappings
  // y[m, n] = x[m, k] · w[n, k]ᵀ, accumulating into y when beta == 1.
  void gemm(const Tensor& x, const Tensor& w, const Tensor& out, float beta);

  int index_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_workspace_ = nullptr;
  std::string device_name_;
  int n_sms_ = 0;  // streaming multiprocessors: the attention split planner fills them
  // paged_attention's split workspace (cuda::kPagedAttentionWorkspaceBytes), allocated in create
  // so that no call allocates.
  OwnedTensor attention_workspace_;
  std::vector<void*> imported_;  // import_memory's mappings, closed with the backend
};

}  // namespace msi

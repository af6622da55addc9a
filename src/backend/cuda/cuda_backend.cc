#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_event.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/argmax.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dummy.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/moe.cuh"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/tensor_access.h"
#include "core/check.h"

namespace msi {
namespace {

using bf16 = __nv_bfloat16;

// cuBLAS gets a fixed workspace at creation so it never allocates inside an op (and the ops stay
// capturable in a CUDA graph). 32 MiB is what NVIDIA recommends for Hopper.
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;
// upload_weight_into converts this many elements per host staging chunk.
constexpr size_t kUploadChunkElems = size_t{16} << 20;

using cuda_access::bf;
using cuda_access::cbf;
using cuda_access::check_dtype;
using cuda_access::ci32;

}  // namespace

Result<std::unique_ptr<Backend>> CudaBackend::create(int index) {
  if (index < 0) return error(StatusCode::kInvalidArgument, "cuda: device index {} < 0", index);
  int n_devices = 0;
  const cudaError_t count_err = cudaGetDeviceCount(&n_devices);
  if (count_err != cudaSuccess) {
    (void)cudaGetLastError();
    return error(StatusCode::kUnavailable, "cuda: no usable CUDA device ({})",
                 cudaGetErrorString(count_err));
  }
  if (index >= n_devices) {
    return error(StatusCode::kUnavailable, "cuda: no device {} (this machine has {})", index,
                 n_devices);
  }
  std::unique_ptr<CudaBackend> b(new CudaBackend(index));
  MSI_CUDA_RETURN_IF_ERROR(cudaSetDevice(index));
  cudaDeviceProp prop{};
  MSI_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, index));
  b->device_name_ = prop.name;
  MSI_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking));
  MSI_CUDA_RETURN_IF_ERROR(cudaMalloc(&b->cublas_workspace_, kCublasWorkspaceBytes));
  if (cublasCreate(&b->cublas_) != CUBLAS_STATUS_SUCCESS) {
    return error(StatusCode::kUnavailable, "cuda: cublasCreate failed on device {}", index);
  }
  MSI_CUBLAS_CHECK(cublasSetStream(b->cublas_, b->stream_));
  MSI_CUBLAS_CHECK(cublasSetWorkspace(b->cublas_, b->cublas_workspace_, kCublasWorkspaceBytes));
  MSI_CUBLAS_CHECK(cublasSetPointerMode(b->cublas_, CUBLAS_POINTER_MODE_HOST));
  b->n_sms_ = prop.multiProcessorCount;
  b->attention_workspace_ = b->alloc(
      DType::kU8, {static_cast<int64_t>(cuda::kPagedAttentionWorkspaceBytes)});
  return std::unique_ptr<Backend>(std::move(b));
}

CudaBackend::~CudaBackend() {
  // Teardown may run after the runtime has begun unloading at exit; tolerate that one error.
  auto tolerate = [](cudaError_t e) {
    if (e != cudaSuccess && e != cudaErrorCudartUnloading) MSI_CUDA_CHECK(e);
  };
  if (stream_ == nullptr && cublas_ == nullptr && cublas_workspace_ == nullptr) return;
  tolerate(cudaSetDevice(index_));
  if (stream_ != nullptr) tolerate(cudaStreamSynchronize(stream_));
  close_imported();
  if (cublas_ != nullptr) cublasDestroy(cublas_);  // its status is moot at teardown
  if (cublas_workspace_ != nullptr) tolerate(cudaFree(cublas_workspace_));
  if (stream_ != nullptr) tolerate(cudaStreamDestroy(stream_));
}

std::string CudaBackend::name() const { return fmt::format("cuda:{} ({})", index_, device_name_); }

void CudaBackend::make_current() const { MSI_CUDA_CHECK(cudaSetDevice(index_)); }

// ---- memory ----

OwnedTensor CudaBackend::alloc(DType dtype, std::initializer_list<int64_t> shape) {
  make_current();
  OwnedTensor owned;
  owned.tensor = Tensor::view(nullptr, dtype, shape);
  const size_t bytes = std::max<size_t>(owned.tensor.nbytes(), 1);
  void* p = nullptr;
  MSI_CUDA_CHECK(cudaMalloc(&p, bytes));
  MSI_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  const int device = index_;
  owned.buffer = Buffer(p, [device](void* q) {
    int prev = 0;
    const cudaError_t e = cudaGetDevice(&prev);
    if (e == cudaErrorCudartUnloading) return;  // process exit: the driver frees everything
    MSI_CUDA_CHECK(e);
    MSI_CUDA_CHECK(cudaSetDevice(device));
    MSI_CUDA_CHECK(cudaFree(q));  // implicitly synchronizes: frees happen at start-up/teardown
    MSI_CUDA_CHECK(cudaSetDevice(prev));
  });
  owned.tensor.data = p;
  return owned;
}

void CudaBackend::upload_weight_into(const Tensor& dst, const HostTensorView& host) {
  check_dtype(dst, DType::kBF16, "upload destination");
  MSI_CHECK(dst.numel() == host.numel(), "upload of {} elements into {}", host.numel(), dst.numel());
  MSI_CHECK(host.dtype == DType::kF32 || host.dtype == DType::kF16 || host.dtype == DType::kBF16,
            "cuda: cannot upload a {} weight", dtype_name(host.dtype));
  make_current();
  const size_t n = static_cast<size_t>(host.numel());
  auto* out = static_cast<uint16_t*>(dst.data);
  if (host.dtype == DType::kBF16) {
    MSI_CUDA_CHECK(cudaMemcpyAsync(out, host.data, n * sizeof(uint16_t), cudaMemcpyHostToDevice, stream_));
    MSI_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  std::vector<float> f32(std::min(n, kUploadChunkElems));
  std::vector<uint16_t> staged(f32.size());
  const size_t src_elem = dtype_size(host.dtype);
  for (size_t begin = 0; begin < n; begin += kUploadChunkElems) {
    const size_t count = std::min(kUploadChunkElems, n - begin);
    convert_to_f32(static_cast<const char*>(host.data) + begin * src_elem, host.dtype, f32.data(), count);
    for (size_t i = 0; i < count; ++i) staged[i] = f32_to_bf16(f32[i]);
    MSI_CUDA_CHECK(cudaMemcpyAsync(out + begin, staged.data(), count * sizeof(uint16_t),
                                   cudaMemcpyHostToDevice, stream_));
    MSI_CUDA_CHECK(cudaStreamSynchronize(stream_));  // staged is reused by the next chunk
  }
}

void CudaBackend::fill_dummy(const Tensor& dst, uint64_t stream, float center, float half_width) {
  check_dtype(dst, DType::kBF16, "dummy weight");
  make_current();
  cuda::launch_fill_dummy(bf(dst), dst.numel(), stream, center, half_width, stream_);
}

namespace {

class EventClock final : public DeviceClock {
 public:
  EventClock(int device, cudaStream_t stream, int n) : device_(device), stream_(stream) {
    MSI_CUDA_CHECK(cudaSetDevice(device));
    events_.resize(static_cast<size_t>(n));
    for (cudaEvent_t& e : events_) MSI_CUDA_CHECK(cudaEventCreate(&e));
  }
  ~EventClock() override {
    if (cudaSetDevice(device_) != cudaSuccess) return;
    for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
  }
  void record(int i) override {
    MSI_CUDA_CHECK(cudaSetDevice(device_));
    MSI_CUDA_CHECK(cudaEventRecord(events_.at(static_cast<size_t>(i)), stream_));
  }
  double elapsed_ms(int a, int b) override {
    MSI_CUDA_CHECK(cudaSetDevice(device_));
    MSI_CUDA_CHECK(cudaEventSynchronize(events_.at(static_cast<size_t>(b))));
    float ms = 0.0f;
    MSI_CUDA_CHECK(cudaEventElapsedTime(&ms, events_.at(static_cast<size_t>(a)), events_.at(static_cast<size_t>(b))));
    return ms;
  }

 private:
  int device_;
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;
};

}  // namespace

std::unique_ptr<DeviceClock> CudaBackend::make_clock(int n_marks) {
  return std::make_unique<EventClock>(index_, stream_, n_marks);
}

namespace {

class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(int device, cudaStream_t stream, cudaGraphExec_t exec) : device_(device), stream_(stream), exec_(exec) {}
  ~CudaGraph() override {
    if (cudaSetDevice(device_) == cudaSuccess) (void)cudaGraphExecDestroy(exec_);
  }
  void launch() override {
    MSI_CUDA_CHECK(cudaSetDevice(device_));
    MSI_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
  }

 private:
  int device_;
  cudaStream_t stream_;
  cudaGraphExec_t exec_;
};

}  // namespace

std::unique_ptr<DeviceGraph> CudaBackend::capture(const std::function<void()>& enqueue) {
  make_current();
  MSI_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  enqueue();
  cudaGraph_t graph = nullptr;
  MSI_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  MSI_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  MSI_CUDA_CHECK(cudaGraphDestroy(graph));
  return std::make_unique<CudaGraph>(index_, stream_, exec);
}

std::unique_ptr<DeviceEvent> CudaBackend::make_event() {
  return std::make_unique<CudaEvent>(index_, cudaEventDisableTiming);
}

void CudaBackend::record_event(DeviceEvent& event) {
  make_current();
  MSI_CUDA_CHECK(cudaEventRecord(static_cast<CudaEvent&>(event).get(), stream_));
}

void CudaBackend::wait_event(DeviceEvent& event) {
  make_current();
  MSI_CUDA_CHECK(cudaStreamWaitEvent(stream_, static_cast<CudaEvent&>(event).get(), 0));
}

Status CudaBackend::enable_peer_access(const Backend& other) {
  const Device d = other.device();
  if (d.kind != DeviceKind::kCuda) {
    return error(StatusCode::kUnavailable, "{} cannot reach {}'s memory", name(), other.name());
  }
  if (d.index == index_) return Status::ok();
  int can = 0;
  MSI_CUDA_RETURN_IF_ERROR(cudaDeviceCanAccessPeer(&can, index_, d.index));
  if (!can) return error(StatusCode::kUnavailable, "cuda:{} has no peer access to cuda:{}", index_, d.index);
  make_current();
  const cudaError_t e = cudaDeviceEnablePeerAccess(d.index, 0);
  if (e == cudaErrorPeerAccessAlreadyEnabled) {
    (void)cudaGetLastError();
    return Status::ok();
  }
  MSI_CUDA_RETURN_IF_ERROR(e);
  return Status::ok();
}

void CudaBackend::synchronize() {
  make_current();
  MSI_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_from_host(const Tensor& dst, const void* src, size_t nbytes) {
  MSI_CHECK(nbytes <= dst.nbytes(), "copy of {} bytes into {}", nbytes, dst.nbytes());
  if (nbytes == 0) return;
  make_current();
  MSI_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, nbytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(void* dst, const Tensor& src, size_t nbytes) {
  MSI_CHECK(nbytes <= src.nbytes(), "copy of {} bytes from {}", nbytes, src.nbytes());
  make_current();
  if (nbytes > 0) {
    MSI_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, nbytes, cudaMemcpyDeviceToHost, stream_));
  }
  MSI_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---- ops ----

void CudaBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  check_dtype(table, DType::kBF16, "embedding table");
  check_dtype(ids, DType::kI32, "embedding ids");
  check_dtype(out, DType::kBF16, "embedding out");
  MSI_CHECK(out.numel() == ids.numel() * table.cols(), "embedding shapes");
  make_current();
  cuda::launch_gather_rows(cbf(table), ci32(ids), bf(out), ids.numel(), table.cols(), stream_);
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, const Tensor& out, float eps) {
  MSI_CHECK(x.cols() == w.numel() && out.numel() == x.numel(), "rms_norm shapes");
  check_dtype(x, DType::kBF16, "rms_norm x");
  check_dtype(w, DType::kBF16, "rms_norm weight");
  check_dtype(out, DType::kBF16, "rms_norm out");
  make_current();
  cuda::launch_rms_norm(cbf(x), cbf(w), bf(out), x.rows(), x.cols(), eps, stream_);
}

void CudaBackend::add_rms_norm(const Tensor& residual, const Tensor& x, const Tensor& w,
                               const Tensor& out, float eps) {
  MSI_CHECK(residual.numel() == x.numel() && x.cols() == w.numel() &&
                out.numel() == residual.numel(),
            "add_rms_norm shapes");
  check_dtype(residual, DType::kBF16, "add_rms_norm residual");
  check_dtype(x, DType::kBF16, "add_rms_norm x");
  check_dtype(w, DType::kBF16, "add_rms_norm weight");
  check_dtype(out, DType::kBF16, "add_rms_norm out");
  make_current();
  cuda::launch_add_rms_norm(bf(residual), cbf(x), cbf(w), bf(out), residual.rows(),
                            residual.cols(), eps, stream_);
}

void CudaBackend::gemm(const Tensor& x, const Tensor& w, const Tensor& out, float beta) {
  const int64_t m = x.rows(), n = w.rows(), k = w.cols();
  MSI_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "linear: m={} n={} k={}", m, n, k);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty product: y = beta * y
    if (beta == 0.0f) MSI_CUDA_CHECK(cudaMemsetAsync(out.data, 0, out.nbytes(), stream_));
    return;
  }
  // Row-major y[m, n] is column-major Y'[n, m] (ld n); x[m, k] is column-major X'[k, m] (ld k);
  // w[n, k] is column-major W'[k, n] (ld k). y = x·wᵀ  ⇔  Y' = W'ᵀ · X'.
  const float alpha = 1.0f;
  const cudaDataType_t out_type = out.dtype == DType::kF32 ? CUDA_R_32F : CUDA_R_16BF;
  MSI_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                static_cast<int>(m), static_cast<int>(k), &alpha, w.data,
                                CUDA_R_16BF, static_cast<int>(k), x.data, CUDA_R_16BF,
                                static_cast<int>(k), &beta, out.data, out_type,
                                static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  check_dtype(x, DType::kBF16, "linear input");
  check_dtype(w, DType::kBF16, "linear weight");
  MSI_CHECK(out.dtype == DType::kBF16 || out.dtype == DType::kF32,
            "cuda: linear out must be BF16 or F32, is {}", dtype_name(out.dtype));
  MSI_CHECK(x.cols() == w.cols() && out.cols() == w.rows() && out.rows() == x.rows(),
            "linear shapes: x [{}, {}], w [{}, {}], out [{}, {}]", x.rows(), x.cols(), w.rows(),
            w.cols(), out.rows(), out.cols());
  if (x.rows() == 0) return;
  make_current();
  float beta = 0.0f;
  if (bias.data != nullptr) {
    // Seed y with the bias and let the GEMM accumulate (beta = 1): one rounding of the sum.
    check_dtype(bias, DType::kBF16, "linear bias");
    MSI_CHECK(bias.numel() == w.rows(), "linear bias has {} elements, want {}", bias.numel(),
              w.rows());
    if (out.dtype == DType::kF32) {
      cuda::launch_broadcast_rows(cbf(bias), out.as<float>(), x.rows(), w.rows(), stream_);
    } else {
      cuda::launch_broadcast_rows(cbf(bias), bf(out), x.rows(), w.rows(), stream_);
    }
    beta = 1.0f;
  }
  gemm(x, w, out, beta);
}

void CudaBackend::rope(const Tensor& x, const Tensor& positions, int64_t n_heads,
                       int64_t head_dim, double theta) {
  MSI_CHECK(x.cols() == n_heads * head_dim, "rope shapes");
  MSI_CHECK(head_dim > 0 && head_dim % 2 == 0 && theta > 0.0, "rope: head_dim={} theta={}",
            head_dim, theta);
  check_dtype(x, DType::kBF16, "rope x");
  check_dtype(positions, DType::kI32, "rope positions");
  MSI_CHECK(positions.numel() >= x.rows(), "rope: {} positions for {} rows", positions.numel(),
            x.rows());
  make_current();
  cuda::launch_rope(bf(x), ci32(positions), x.rows(), n_heads, head_dim, theta, stream_);
}

void CudaBackend::kv_append(const Tensor& k, const Tensor& v, const Tensor& k_cache,
                            const Tensor& v_cache, const Tensor& slot_mapping) {
  MSI_CHECK(k.cols() == k_cache.cols() && v.cols() == v_cache.cols() && k.cols() == v.cols() &&
                k.rows() == v.rows(),
            "kv_append shapes");
  check_dtype(k, DType::kBF16, "kv_append k");
  check_dtype(v, DType::kBF16, "kv_append v");
  check_dtype(k_cache, DType::kBF16, "k_cache");
  check_dtype(v_cache, DType::kBF16, "v_cache");
  check_dtype(slot_mapping, DType::kI32, "slot_mapping");
  make_current();
  cuda::launch_kv_append(cbf(k), cbf(v), bf(k_cache), bf(v_cache), ci32(slot_mapping), k.rows(),
                         k.cols(), stream_);
}

void CudaBackend::paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                  const Tensor& out, const Tensor& token_seq,
                                  const Tensor& token_pos, const Tensor& block_tables,
                                  const AttentionShape& shape) {
  MSI_CHECK(shape.n_kv_heads > 0 && shape.n_heads > 0 && shape.n_heads % shape.n_kv_heads == 0,
            "paged_attention: n_heads={} n_kv_heads={}", shape.n_heads, shape.n_kv_heads);
  MSI_CHECK(shape.head_dim > 0 && shape.head_dim <= cuda::kMaxHeadDim && shape.head_dim % 8 == 0,
            "paged_attention: head_dim={} (this kernel takes multiples of 8 up to {})",
            shape.head_dim, cuda::kMaxHeadDim);
  MSI_CHECK(shape.block_size > 0 && shape.max_blocks_per_seq > 0,
            "paged_attention: block_size={} max_blocks_per_seq={}", shape.block_size,
            shape.max_blocks_per_seq);
  MSI_CHECK(q.cols() == shape.n_heads * shape.head_dim && out.numel() == q.numel() &&
                k_cache.cols() == shape.n_kv_heads * shape.head_dim,
            "paged_attention shapes");
  MSI_CHECK(k_cache.rows() <= INT32_MAX, "paged_attention: slots are int32 in the kernel");
  check_dtype(q, DType::kBF16, "attention q");
  check_dtype(out, DType::kBF16, "attention out");
  check_dtype(k_cache, DType::kBF16, "k_cache");
  check_dtype(v_cache, DType::kBF16, "v_cache");
  check_dtype(token_seq, DType::kI32, "token_seq");
  check_dtype(token_pos, DType::kI32, "token_pos");
  check_dtype(block_tables, DType::kI32, "block_tables");
  cuda::PagedAttentionArgs a;
  a.n_tokens = q.rows();
  a.n_heads = shape.n_heads;
  a.n_kv_heads = shape.n_kv_heads;
  a.head_dim = shape.head_dim;
  a.block_size = shape.block_size;
  a.max_blocks_per_seq = shape.max_blocks_per_seq;
  a.scale = shape.scale;
  a.token_seq = ci32(token_seq);
  a.token_pos = ci32(token_pos);
  a.block_tables = ci32(block_tables);
  // 16-byte rows: the kernel moves q, K, V and out in 16- and 8-byte vectors.
  for (const Tensor* t : {&q, &k_cache, &v_cache, &out}) {
    MSI_CHECK(reinterpret_cast<uintptr_t>(t->data) % 16 == 0,
              "paged_attention: tensors must be 16-byte aligned");
  }
  a.n_splits = cuda::plan_paged_attention_splits(a, n_sms_, attention_workspace_.tensor.nbytes());
  make_current();
  cuda::launch_paged_attention(cbf(q), cbf(k_cache), cbf(v_cache), bf(out), a,
                               attention_workspace_.tensor.data, stream_);
}

void CudaBackend::router_topk(const Tensor& logits, const Tensor& ids, const Tensor& weights,
                              bool normalize) {
  MSI_CHECK(ids.rows() == logits.rows() && weights.numel() == ids.numel(), "router shapes");
  check_dtype(logits, DType::kF32, "router logits");
  check_dtype(ids, DType::kI32, "router ids");
  check_dtype(weights, DType::kF32, "router weights");
  const int64_t n_experts = logits.cols(), top_k = ids.cols();
  MSI_CHECK(top_k > 0 && top_k <= n_experts && top_k <= cuda::kMaxTopK,
            "router_topk: top_k={} n_experts={} (max {})", top_k, n_experts, cuda::kMaxTopK);
  make_current();
  cuda::launch_router_topk(logits.as<float>(), logits.rows(), n_experts, top_k, normalize,
                           ids.as<int32_t>(), weights.as<float>(), stream_);
}

void CudaBackend::swiglu_mlp(const Tensor& x, const Tensor& gate_w, const Tensor& up_w,
                             const Tensor& down_w, const Tensor& out, const Tensor& scratch) {
  const int64_t m = x.rows(), hidden = x.cols(), inter = gate_w.rows();
  MSI_CHECK(scratch.numel() >= 2 * m * inter, "swiglu scratch too small");
  MSI_CHECK(gate_w.cols() == hidden && up_w.rows() == inter && up_w.cols() == hidden &&
                down_w.rows() == out.cols() && down_w.cols() == inter && out.rows() == m,
            "swiglu_mlp shapes");
  check_dtype(scratch, DType::kBF16, "swiglu scratch");
  check_dtype(out, DType::kBF16, "swiglu out");
  if (m == 0) return;
  make_current();
  const Tensor gate = Tensor::view(scratch.data, DType::kBF16, {m, inter});    // [m, inter]
  const Tensor up = Tensor::view(bf(scratch) + m * inter, DType::kBF16, {m, inter});
  linear(x, gate_w, Tensor{}, gate);
  linear(x, up_w, Tensor{}, up);
  cuda::launch_swiglu(cbf(gate), cbf(up), bf(gate), m * inter, stream_);  // act over gate
  linear(gate, down_w, Tensor{}, out);
}

void CudaBackend::add_sigmoid_scaled(const Tensor& out, const Tensor& gate_logit,
                                     const Tensor& y) {
  MSI_CHECK(y.numel() == out.numel() && gate_logit.numel() == out.rows(),
            "add_sigmoid_scaled shapes");
  check_dtype(out, DType::kBF16, "add_sigmoid_scaled out");
  check_dtype(gate_logit, DType::kBF16, "add_sigmoid_scaled gate");
  check_dtype(y, DType::kBF16, "add_sigmoid_scaled y");
  make_current();
  cuda::launch_add_sigmoid_scaled(bf(out), cbf(gate_logit), cbf(y), out.rows(), out.cols(),
                                  stream_);
}

void CudaBackend::add(const Tensor& out, const Tensor& y) {
  MSI_CHECK(out.numel() == y.numel(), "add shapes");
  check_dtype(out, DType::kBF16, "add out");
  check_dtype(y, DType::kBF16, "add y");
  make_current();
  cuda::launch_add(bf(out), cbf(y), out.numel(), stream_);
}

void CudaBackend::gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) {
  check_dtype(src, DType::kBF16, "gather_rows src");
  check_dtype(rows, DType::kI32, "gather_rows rows");
  check_dtype(out, DType::kBF16, "gather_rows out");
  MSI_CHECK(out.cols() == src.cols() && out.rows() >= rows.numel(), "gather_rows shapes");
  make_current();
  cuda::launch_gather_rows(cbf(src), ci32(rows), bf(out), rows.numel(), src.cols(), stream_);
}

void CudaBackend::scatter_add_rows(const Tensor& src, const Tensor& rows, const Tensor& scale,
                                   const Tensor& out) {
  check_dtype(src, DType::kBF16, "scatter_add_rows src");
  check_dtype(rows, DType::kI32, "scatter_add_rows rows");
  check_dtype(scale, DType::kF32, "scatter_add_rows scale");
  check_dtype(out, DType::kBF16, "scatter_add_rows out");
  MSI_CHECK(out.cols() == src.cols() && src.rows() >= rows.numel() &&
                scale.numel() >= rows.numel(),
            "scatter_add_rows shapes");
  make_current();
  cuda::launch_scatter_add_rows(cbf(src), ci32(rows), scale.as<float>(), bf(out), rows.numel(),
                                src.cols(), stream_);
}

void CudaBackend::fill_zero(const Tensor& t) {
  if (t.nbytes() == 0) return;
  make_current();
  MSI_CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.nbytes(), stream_));
}

void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  MSI_CHECK(dst.nbytes() == src.nbytes(), "copy of {} bytes into {}", src.nbytes(), dst.nbytes());
  if (src.nbytes() == 0 || dst.data == src.data) return;
  make_current();
  // cudaMemcpyDefault: either side may be another device's memory (a peer copy, by the copy engines).
  MSI_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDefault, stream_));
}

void CudaBackend::argmax_rows(const Tensor& logits, const Tensor& ids) {
  check_dtype(logits, DType::kF32, "argmax logits");
  check_dtype(ids, DType::kI32, "argmax ids");
  MSI_CHECK(ids.numel() >= logits.rows(), "argmax: {} ids for {} rows", ids.numel(), logits.rows());
  make_current();
  cuda::launch_argmax_rows(logits.as<float>(), logits.rows(), logits.cols(), ids.as<int32_t>(), stream_);
}

}  // namespace msi

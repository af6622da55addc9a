#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <vector>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/ops.h"
#include "model/dummy.h"

namespace msi {
namespace {

void check_f32(const Tensor& t, const char* what) {
  MSI_CHECK(t.dtype == DType::kF32, "{} must be F32, is {}", what, dtype_name(t.dtype));
}

}  // namespace

OwnedTensor CpuBackend::alloc(DType dtype, std::initializer_list<int64_t> shape) {
  OwnedTensor owned;
  owned.tensor = Tensor::view(nullptr, dtype, shape);
  // 64-byte aligned, zeroed (aligned_alloc needs a size that is a multiple of the alignment).
  const size_t bytes = (std::max<size_t>(owned.tensor.nbytes(), 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  MSI_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
  std::memset(p, 0, bytes);
  owned.buffer = Buffer(p, [](void* q) { std::free(q); });
  owned.tensor.data = p;
  return owned;
}

void CpuBackend::upload_weight_into(const Tensor& dst, const HostTensorView& host) {
  check_f32(dst, "upload destination");
  MSI_CHECK(dst.numel() == host.numel(), "upload of {} elements into {}", host.numel(), dst.numel());
  convert_to_f32(host.data, host.dtype, dst.as<float>(), static_cast<size_t>(host.numel()));
}

void CpuBackend::fill_dummy(const Tensor& dst, uint64_t stream, float center, float half_width) {
  check_f32(dst, "dummy weight");
  const GeneratedTensor g{stream, center, half_width};
  float* out = dst.as<float>();
  for (int64_t i = 0; i < dst.numel(); ++i) out[i] = bf16_to_f32(dummy_value_bf16(g, i));
}

namespace {

// Host timestamps: every CPU op has finished when it returns.
class HostClock final : public DeviceClock {
 public:
  explicit HostClock(int n) : marks_(static_cast<size_t>(n)) {}
  void record(int i) override { marks_.at(static_cast<size_t>(i)) = std::chrono::steady_clock::now(); }
  double elapsed_ms(int a, int b) override {
    return std::chrono::duration<double, std::milli>(marks_.at(static_cast<size_t>(b)) -
                                                     marks_.at(static_cast<size_t>(a)))
        .count();
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

}  // namespace

Status CpuBackend::enable_peer_access(const Backend& other) {
  if (other.device().kind != DeviceKind::kCpu) {
    return error(StatusCode::kUnavailable, "the CPU backend cannot reach {}'s memory", other.name());
  }
  return Status::ok();
}

std::unique_ptr<DeviceClock> CpuBackend::make_clock(int n_marks) {
  return std::make_unique<HostClock>(n_marks);
}

void CpuBackend::copy_from_host(const Tensor& dst, const void* src, size_t nbytes) {
  MSI_CHECK(nbytes <= dst.nbytes(), "copy of {} bytes into {}", nbytes, dst.nbytes());
  std::memcpy(dst.data, src, nbytes);
}

void CpuBackend::copy_to_host(void* dst, const Tensor& src, size_t nbytes) {
  MSI_CHECK(nbytes <= src.nbytes(), "copy of {} bytes from {}", nbytes, src.nbytes());
  std::memcpy(dst, src.data, nbytes);
}

void CpuBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  check_f32(table, "embedding table");
  cpu::embedding(table.as<float>(), ids.as<int32_t>(), out.as<float>(), ids.numel(), table.cols());
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, const Tensor& out, float eps) {
  MSI_CHECK(x.cols() == w.numel() && out.numel() == x.numel(), "rms_norm shapes");
  cpu::rms_norm(x.as<float>(), w.as<float>(), out.as<float>(), x.rows(), x.cols(), eps);
}

void CpuBackend::add_rms_norm(const Tensor& residual, const Tensor& x, const Tensor& w,
                              const Tensor& out, float eps) {
  MSI_CHECK(residual.numel() == x.numel() && x.cols() == w.numel(), "add_rms_norm shapes");
  cpu::add_rms_norm(residual.as<float>(), x.as<float>(), w.as<float>(), out.as<float>(),
                    residual.rows(), residual.cols(), eps);
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  check_f32(x, "linear input");
  check_f32(w, "linear weight");
  MSI_CHECK(x.cols() == w.cols() && out.cols() == w.rows() && out.rows() == x.rows(),
            "linear shapes: x [{}, {}], w [{}, {}], out [{}, {}]", x.rows(), x.cols(), w.rows(),
            w.cols(), out.rows(), out.cols());
  if (x.rows() == 0) return;
  cpu::linear(x.as<float>(), w.as<float>(), bias.data ? bias.as<float>() : nullptr,
              out.as<float>(), x.rows(), w.rows(), w.cols());
}

void CpuBackend::rope(const Tensor& x, const Tensor& positions, int64_t n_heads, int64_t head_dim,
                      double theta) {
  MSI_CHECK(x.cols() == n_heads * head_dim, "rope shapes");
  cpu::rope(x.as<float>(), positions.as<int32_t>(), x.rows(), n_heads, head_dim, theta);
}

void CpuBackend::kv_append(const Tensor& k, const Tensor& v, const Tensor& k_cache,
                           const Tensor& v_cache, const Tensor& slot_mapping) {
  MSI_CHECK(k.cols() == k_cache.cols() && v.cols() == v_cache.cols(), "kv_append shapes");
  cpu::kv_append(k.as<float>(), v.as<float>(), k_cache.as<float>(), v_cache.as<float>(),
                 slot_mapping.as<int32_t>(), k.rows(), k.cols());
}

void CpuBackend::paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 const Tensor& out, const Tensor& token_seq,
                                 const Tensor& token_pos, const Tensor& block_tables,
                                 const AttentionShape& shape) {
  cpu::PagedAttentionParams p;
  p.n_tokens = q.rows();
  p.n_heads = shape.n_heads;
  p.n_kv_heads = shape.n_kv_heads;
  p.head_dim = shape.head_dim;
  p.block_size = shape.block_size;
  p.scale = shape.scale;
  p.token_seq = token_seq.as<int32_t>();
  p.token_pos = token_pos.as<int32_t>();
  p.block_tables = block_tables.as<int32_t>();
  p.max_blocks_per_seq = shape.max_blocks_per_seq;
  cpu::paged_attention(q.as<float>(), k_cache.as<float>(), v_cache.as<float>(), out.as<float>(),
                       p);
}

void CpuBackend::router_topk(const Tensor& logits, const Tensor& ids, const Tensor& weights,
                             bool normalize) {
  MSI_CHECK(ids.rows() == logits.rows() && weights.numel() == ids.numel(), "router shapes");
  cpu::router_topk(logits.as<float>(), logits.rows(), logits.cols(), ids.cols(), normalize,
                   ids.as<int32_t>(), weights.as<float>());
}

void CpuBackend::swiglu_mlp(const Tensor& x, const Tensor& gate_w, const Tensor& up_w,
                            const Tensor& down_w, const Tensor& out, const Tensor& scratch) {
  const int64_t m = x.rows(), inter = gate_w.rows();
  MSI_CHECK(scratch.numel() >= 2 * m * inter, "swiglu scratch too small");
  if (m == 0) return;
  cpu::swiglu_mlp(x.as<float>(), gate_w.as<float>(), up_w.as<float>(), down_w.as<float>(),
                  out.as<float>(), m, x.cols(), inter, scratch.as<float>());
}

void CpuBackend::add_sigmoid_scaled(const Tensor& out, const Tensor& gate_logit, const Tensor& y) {
  const int64_t m = out.rows(), d = out.cols();
  float* o = out.as<float>();
  const float* g = gate_logit.as<float>();
  const float* yy = y.as<float>();
  for (int64_t i = 0; i < m; ++i) {
    const float s = 1.0f / (1.0f + std::exp(-g[i]));
    for (int64_t j = 0; j < d; ++j) o[i * d + j] += s * yy[i * d + j];
  }
}

void CpuBackend::add(const Tensor& out, const Tensor& y) {
  MSI_CHECK(out.numel() == y.numel(), "add shapes");
  float* o = out.as<float>();
  const float* yy = y.as<float>();
  for (int64_t i = 0, n = out.numel(); i < n; ++i) o[i] += yy[i];
}

void CpuBackend::gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) {
  const int64_t d = src.cols();
  const int32_t* r = rows.as<int32_t>();
  for (int64_t i = 0, n = rows.numel(); i < n; ++i) {
    std::memcpy(out.as<float>() + i * d, src.as<float>() + static_cast<int64_t>(r[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
}

void CpuBackend::scatter_add_rows(const Tensor& src, const Tensor& rows, const Tensor& scale,
                                  const Tensor& out) {
  const int64_t d = src.cols();
  const int32_t* r = rows.as<int32_t>();
  const float* s = scale.as<float>();
  for (int64_t i = 0, n = rows.numel(); i < n; ++i) {
    float* o = out.as<float>() + static_cast<int64_t>(r[i]) * d;
    const float* x = src.as<float>() + i * d;
    for (int64_t j = 0; j < d; ++j) o[j] += s[i] * x[j];
  }
}

void CpuBackend::fill_zero(const Tensor& t) { std::memset(t.data, 0, t.nbytes()); }

void CpuBackend::copy(const Tensor& dst, const Tensor& src) {
  MSI_CHECK(dst.nbytes() == src.nbytes(), "copy of {} bytes into {}", src.nbytes(), dst.nbytes());
  std::memmove(dst.data, src.data, src.nbytes());
}

void CpuBackend::argmax_rows(const Tensor& logits, const Tensor& ids) {
  check_f32(logits, "argmax logits");
  MSI_CHECK(ids.dtype == DType::kI32 && ids.numel() >= logits.rows(), "argmax ids");
  const int64_t n = logits.rows(), v = logits.cols();
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.as<float>() + i * v;
    int64_t best = 0;
    for (int64_t j = 1; j < v; ++j) {
      if (row[j] > row[best]) best = j;
    }
    ids.as<int32_t>()[i] = static_cast<int32_t>(best);
  }
}

}  // namespace msi

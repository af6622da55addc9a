// CpuBackend::count_experts: the reference tally of routed (token, expert) pairs (see
// Backend::count_experts); the CUDA kernel (backend/cuda/expert_count.cuh) is tested against it.
#include <algorithm>
#include <cstdint>

#include "backend/cpu/cpu_backend.h"

namespace msi {

void CpuBackend::count_experts(const Tensor& topk_ids, const Tensor& n_valid,
                               const Tensor& counts) {
  MSI_CHECK(topk_ids.dtype == DType::kI32, "cpu: count_experts topk_ids must be I32, is {}",
            dtype_name(topk_ids.dtype));
  MSI_CHECK(counts.dtype == DType::kI32, "cpu: count_experts counts must be I32, is {}",
            dtype_name(counts.dtype));
  MSI_CHECK(n_valid.data == nullptr || (n_valid.dtype == DType::kI32 && n_valid.numel() >= 1),
            "cpu: count_experts n_valid must be empty or I32 [>= 1]");
  const int64_t n = topk_ids.rows(), top_k = topk_ids.cols(), n_experts = counts.numel();
  int64_t n_rows = n;
  if (n_valid.data != nullptr) n_rows = std::clamp<int64_t>(*n_valid.as<int32_t>(), 0, n);
  const int32_t* ids = topk_ids.as<int32_t>();  // [n, top_k]
  int32_t* out = counts.as<int32_t>();          // [n_experts]
  for (int64_t i = 0; i < n_rows * top_k; ++i) {
    const int32_t e = ids[i];
    if (e >= 0 && e < n_experts) ++out[e];
  }
}

}  // namespace msi

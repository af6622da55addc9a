// CudaBackend::count_experts: validation and dispatch to the tally kernel (expert_count.cuh).
#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/expert_count.cuh"
#include "core/check.h"

namespace msi {

void CudaBackend::count_experts(const Tensor& topk_ids, const Tensor& n_valid,
                                const Tensor& counts) {
  MSI_CHECK(topk_ids.dtype == DType::kI32, "cuda: count_experts topk_ids must be I32, is {}",
            dtype_name(topk_ids.dtype));
  MSI_CHECK(counts.dtype == DType::kI32, "cuda: count_experts counts must be I32, is {}",
            dtype_name(counts.dtype));
  MSI_CHECK(n_valid.data == nullptr || (n_valid.dtype == DType::kI32 && n_valid.numel() >= 1),
            "cuda: count_experts n_valid must be empty or I32 [>= 1]");
  const int64_t n = topk_ids.rows(), top_k = topk_ids.cols(), n_experts = counts.numel();
  MSI_CHECK(n_experts > 0 && n_experts <= cuda::kCountMaxExperts,
            "cuda: count_experts over {} experts (1..{})", n_experts, cuda::kCountMaxExperts);
  MSI_CHECK(n * top_k < (int64_t{1} << 31), "cuda: count_experts over {} pairs", n * top_k);
  make_current();
  cuda::launch_count_experts(topk_ids.as<int32_t>(), n, top_k, n_valid.as<int32_t>(),
                             counts.as<int32_t>(), n_experts, stream_);
}

}  // namespace msi

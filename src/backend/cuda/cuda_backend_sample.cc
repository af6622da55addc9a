// CudaBackend::sample_rows: validation and dispatch to the sampling kernel (sample.cuh). One
// kernel on the backend's stream with a grid of n rows, so the op is graph-capturable.
#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/sample.cuh"
#include "core/check.h"

namespace msi {

void CudaBackend::sample_rows(const Tensor& logits, const Tensor& params, const Tensor& ids) {
  MSI_CHECK(logits.dtype == DType::kF32, "cuda: sample_rows logits must be F32, is {}",
            dtype_name(logits.dtype));
  MSI_CHECK(params.dtype == DType::kF32, "cuda: sample_rows params must be F32, is {}",
            dtype_name(params.dtype));
  MSI_CHECK(ids.dtype == DType::kI32, "cuda: sample_rows ids must be I32, is {}",
            dtype_name(ids.dtype));
  MSI_CHECK(logits.ndim == 2, "cuda: sample_rows logits must be [n, vocab], has {} dims", logits.ndim);
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  MSI_CHECK(vocab > 0 && vocab < cuda::kSampleMaxVocab, "cuda: sample_rows vocab={} (1..{})", vocab,
            cuda::kSampleMaxVocab - 1);
  MSI_CHECK(params.ndim == 2 && params.dim(1) == 4 && params.dim(0) >= n,
            "cuda: sample_rows params must be [>= {}, 4] (temperature, top_p, top_k, u)", n);
  MSI_CHECK(ids.numel() >= n, "cuda: sample_rows: {} ids for {} rows", ids.numel(), n);
  make_current();
  cuda::launch_sample_rows(logits.as<float>(), params.as<float>(), n, vocab, ids.as<int32_t>(),
                           stream_);
}

}  // namespace msi

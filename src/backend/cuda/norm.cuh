// RMSNorm kernels (bf16 storage, fp32 math), as backend/cpu/norm.cc computes them.
// Launchers enqueue on `stream`, never block or allocate; pointers are device pointers to
// contiguous row-major data.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

// y[n, d] = x[n, d] / sqrt(mean(x²) + eps) * w[d]. x == y allowed (in place).
void launch_rms_norm(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int64_t n,
                     int64_t d, float eps, cudaStream_t stream);

// residual[n, d] += x[n, d] (rounded to bf16); y = rms_norm(residual). y may alias x.
void launch_add_rms_norm(__nv_bfloat16* residual, const __nv_bfloat16* x, const __nv_bfloat16* w,
                         __nv_bfloat16* y, int64_t n, int64_t d, float eps, cudaStream_t stream);

}  // namespace msi::cuda

// Element-wise kernels on bf16 activations (fp32 math, one rounding per output unless noted).
// Launchers enqueue on `stream`; never block or allocate. Pointers are device pointers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

// out[i] += y[i], i < n.
void launch_add(__nv_bfloat16* out, const __nv_bfloat16* y, int64_t n, cudaStream_t stream);

// out[m, d] += sigmoid(gate_logit[m]) * y[m, d].
void launch_add_sigmoid_scaled(__nv_bfloat16* out, const __nv_bfloat16* gate_logit,
                               const __nv_bfloat16* y, int64_t m, int64_t d, cudaStream_t stream);

// act[i] = silu(gate[i]) * up[i], silu rounded to bf16 before the product (as torch in bf16).
// act may alias gate.
void launch_swiglu(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* act,
                   int64_t n, cudaStream_t stream);

// y[m, n] = bias[n] broadcast over rows; seeds a GEMM that then accumulates with beta = 1.
void launch_broadcast_rows(const __nv_bfloat16* bias, __nv_bfloat16* y, int64_t m, int64_t n,
                           cudaStream_t stream);
void launch_broadcast_rows(const __nv_bfloat16* bias, float* y, int64_t m, int64_t n,
                           cudaStream_t stream);

}  // namespace msi::cuda

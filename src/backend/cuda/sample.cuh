// Token sampling on the device: greedy, temperature, top-k, top-p and one inverse-CDF draw per
// row with a uniform the host drew (the contract is Backend::sample_rows; the CPU backend's
// backend/cpu/sample.cc is the oracle it is tested against).
//
// One block per row, no allocation, no host sync: graph-capturable with a grid of n blocks.
// How the kernel differs from the CPU oracle (both are documented in backend/cuda/sample.cu):
// probabilities are fp32 expf (≤ 2 ulp from glibc's) truncated to fixed point with 40 fractional
// bits and summed exactly in uint64, where the CPU sums fp32 weights in fp64. The two can pick
// different tokens only when u·mass (or top_p·mass) lies within ~1e-7 relative of a cumulative
// boundary, and a weight below 2⁻⁴⁰ of the top token's can never be drawn on the device.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

// Token ids are int32 and the fixed-point masses of a whole row must fit in 63 bits.
inline constexpr int64_t kSampleMaxVocab = int64_t{1} << 23;

// logits [n, vocab] f32, params [n, 4] f32 = (temperature, top_p, top_k, u) per row, ids [n] i32,
// all device memory. Requires 0 < vocab < kSampleMaxVocab. Enqueues one kernel on `stream`.
void launch_sample_rows(const float* logits, const float* params, int64_t n, int64_t vocab,
                        int32_t* ids, cudaStream_t stream);

}  // namespace msi::cuda

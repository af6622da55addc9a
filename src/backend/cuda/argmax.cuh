// Greedy sampling on the device: the argmax of each logits row (ties: the lowest id).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace msi::cuda {

void launch_argmax_rows(const float* logits, int64_t n, int64_t vocab, int32_t* ids, cudaStream_t stream);

}  // namespace msi::cuda

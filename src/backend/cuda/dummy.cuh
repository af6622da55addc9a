// Dummy weights generated on the device: the same counter-based values as model/dummy.h's host
// generator (splitmix64 over stream + i · golden, then bf16(center + half_width · (2u − 1))).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace msi::cuda {

void launch_fill_dummy(__nv_bfloat16* out, int64_t n, uint64_t stream, float center, float half_width,
                       cudaStream_t cuda_stream);

}  // namespace msi::cuda

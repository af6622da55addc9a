#include <algorithm>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dummy.cuh"

namespace msi::cuda {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void fill_dummy_kernel(bf16* out, int64_t n, uint64_t stream, float center, float half_width) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t z = splitmix64(stream + static_cast<uint64_t>(i) * kGolden);
    const float u = static_cast<float>(z >> 40) * 0x1p-24f;
    // Separate roundings, as on the host (no fused multiply-add).
    const float scaled = __fmul_rn(half_width, __fsub_rn(__fmul_rn(2.0f, u), 1.0f));
    out[i] = __float2bfloat16_rn(__fadd_rn(center, scaled));
  }
}

}  // namespace

void launch_fill_dummy(bf16* out, int64_t n, uint64_t stream, float center, float half_width,
                       cudaStream_t cuda_stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>(ceil_div(n, 256), 132 * 16);
  fill_dummy_kernel<<<static_cast<unsigned>(blocks), 256, 0, cuda_stream>>>(out, n, stream, center, half_width);
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

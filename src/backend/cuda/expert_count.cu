#include "backend/cuda/cuda_check.h"
#include "backend/cuda/expert_count.cuh"

namespace msi::cuda {
namespace {

constexpr int kThreads = 512;

// One block. hist: n_experts ints of dynamic shared memory.
__global__ void count_experts_kernel(const int32_t* __restrict__ ids, int32_t n, int32_t top_k,
                                     const int32_t* __restrict__ n_valid,
                                     int32_t* __restrict__ counts, int32_t n_experts) {
  extern __shared__ int32_t hist[];
  for (int32_t e = threadIdx.x; e < n_experts; e += kThreads) hist[e] = 0;
  __syncthreads();
  int32_t n_rows = n;
  if (n_valid != nullptr) n_rows = min(max(*n_valid, 0), n);
  const int32_t n_pairs = n_rows * top_k;
  for (int32_t i = threadIdx.x; i < n_pairs; i += kThreads) {
    const int32_t e = ids[i];
    if (e >= 0 && e < n_experts) atomicAdd(&hist[e], 1);
  }
  __syncthreads();
  // NOTE: a plain read-modify-write: this block is the only writer of `counts` in the launch, and
  // launches on one stream are ordered.
  for (int32_t e = threadIdx.x; e < n_experts; e += kThreads) {
    if (hist[e] != 0) counts[e] += hist[e];
  }
}

}  // namespace

void launch_count_experts(const int32_t* topk_ids, int64_t n, int64_t top_k, const int32_t* n_valid,
                          int32_t* counts, int64_t n_experts, cudaStream_t stream) {
  if (n == 0 || top_k == 0) return;
  const size_t shared = static_cast<size_t>(n_experts) * sizeof(int32_t);
  count_experts_kernel<<<1, kThreads, shared, stream>>>(topk_ids, static_cast<int32_t>(n),
                                                        static_cast<int32_t>(top_k), n_valid,
                                                        counts, static_cast<int32_t>(n_experts));
  MSI_CUDA_CHECK_LAUNCH();
}

}  // namespace msi::cuda

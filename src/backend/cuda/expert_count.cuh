// Expert-load statistics on the device: a tally of routed (token, expert) pairs per global expert
// id (the contract is Backend::count_experts; backend/cpu/expert_count.cc is the oracle).
//
// One block: each thread tallies a strided share of the pairs into a shared-memory histogram with
// shared atomics, then the block adds the histogram to `counts`. The row count may come from
// device memory (n_valid), so a graph recorded for a padded batch counts only the real rows of
// each replay. No allocation, no host sync: graph-capturable.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace msi::cuda {

// The histogram lives in shared memory: at most this many experts (32 KiB).
inline constexpr int64_t kCountMaxExperts = 8192;

// topk_ids [n, top_k] i32, counts [n_experts] i32 (accumulated), n_valid: nullptr or one i32
// (rows counted: clamp(*n_valid, 0, n)), all device memory. Ids outside [0, n_experts) are
// skipped. Requires 0 < n_experts <= kCountMaxExperts and n * top_k < 2^31. Enqueues one kernel
// on `stream` (none when n or top_k is 0).
void launch_count_experts(const int32_t* topk_ids, int64_t n, int64_t top_k, const int32_t* n_valid,
                          int32_t* counts, int64_t n_experts, cudaStream_t stream);

}  // namespace msi::cuda

// The gate that holds a batch of enqueued rounds until the host opens it: a one-warp kernel at the
// head of each stream that spins on a word of mapped pinned host memory. A kernel rather than
// cuStreamWaitValue32 on that word: the first version used the stream wait and every round hung on
// the H200 machine (the cause was not isolated; the kernel gate works). It opens by itself after
// `timeout_ns`, so a host that dies or forgets cannot leave a stream blocked.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace msi::comm::gpu {

cudaError_t launch_gate(const uint32_t* gate, uint32_t gen, uint64_t timeout_ns, cudaStream_t stream);

}  // namespace msi::comm::gpu

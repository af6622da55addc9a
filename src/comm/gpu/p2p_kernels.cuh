// The NVLink peer-to-peer kernels: one launch per device per round.
//
//   send device: p2p_dispatch  every block copies its chunk of one pair's payload into the
//                              receive device's inbox (peer stores), the pair's last block raises
//                              the pair's dispatch flag; block 0 then waits for every combine flag.
//   recv device: p2p_combine   every block of pair (r, s) waits for all M dispatch flags of
//                              receiver r, copies its chunk of the echo back into the send
//                              device's combine inbox, the pair's last block raises the flag.
//
// "Last block of a pair": a per-pair counter in the launching device's memory, incremented by each
// block after a system fence and reset to 0 by the block that completes it, so it is 0 between
// launches. A wait that times out records a WaitError and the kernel still finishes its copies and
// raises its flags: the round fails with the error naming the silent peer, nothing downstream
// cascades into a second timeout, and the counters stay consistent for the next round.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "comm/gpu/wait_error.cuh"

namespace msi::comm::gpu {

// Trivially copyable: passed by value to the kernels. Slices are `slice` bytes apart.
struct P2PRoundArgs {
  int n_senders = 0;            // M
  int n_receivers = 0;          // N
  size_t slice = 0;             // bytes between consecutive pair slices (multiple of 256)
  size_t bytes = 0;             // payload per pair (multiple of 16)
  int blocks_per_pair = 1;
  uint32_t seq = 0;
  int silent_sender = -1;       // fault injection: this sender neither copies nor signals
  // Block 0 of p2p_dispatch waits for the combine flags. Off when both ends share a device: two
  // streams of one device may share a hardware queue, and a dispatch kernel waiting for a combine
  // kernel queued behind it would then only end by its timeout. launch_p2p_combine_wait does the
  // wait instead, enqueued after the combine kernel.
  bool wait_in_dispatch = true;
  uint64_t timeout_ns = 0;
  // send device
  const std::byte* send_payload = nullptr;  // [M][N][slice]
  std::byte* combine_inbox = nullptr;       // [N][M][slice]
  uint32_t* combine_flags = nullptr;        // [N][M]
  uint32_t* send_counters = nullptr;        // [M][N]
  // receive device
  std::byte* dispatch_inbox = nullptr;      // [M][N][slice]
  uint32_t* dispatch_flags = nullptr;       // [M][N]
  uint32_t* recv_counters = nullptr;        // [N][M]
  WaitError* errors = nullptr;              // [kNumWaitSites], mapped host memory
};

inline constexpr int kP2PThreads = 256;

// Blocks per pair for `bytes`: one per 16 KiB, at most `cap`, at most 128 blocks in all so every
// block of the (spinning) combine kernel can be resident even with both ends on one device.
int p2p_blocks_per_pair(size_t bytes, int n_pairs, int cap);

cudaError_t launch_p2p_dispatch(const P2PRoundArgs& args, cudaStream_t stream);
cudaError_t launch_p2p_combine(const P2PRoundArgs& args, cudaStream_t stream);
cudaError_t launch_p2p_combine_wait(const P2PRoundArgs& args, cudaStream_t stream);

}  // namespace msi::comm::gpu

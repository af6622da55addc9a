#include "comm/gpu/p2p_kernels.cuh"

#include <algorithm>

namespace msi::comm::gpu {
namespace {

constexpr size_t kBytesPerBlock = 16 * 1024;
constexpr int kMaxBlocks = 128;
constexpr int kUnroll = 4;

// Copies this block's share of [0, bytes) from src to dst in 16-byte units, kUnroll loads in
// flight per thread. Loads bypass L1 (.cg): the source may have been written by the peer device
// during this kernel (the combine echo), after a flag the block acquired.
__device__ void copy_chunk(std::byte* dst, const std::byte* src, size_t bytes, int part, int n_parts) {
  const size_t n16 = bytes / 16;
  const size_t begin = n16 * part / n_parts;
  const size_t end = n16 * (part + 1) / n_parts;
  const int4* s = reinterpret_cast<const int4*>(src);
  int4* d = reinterpret_cast<int4*>(dst);
  size_t i = begin + threadIdx.x;
  for (; i + (kUnroll - 1) * kP2PThreads < end; i += kUnroll * kP2PThreads) {
    int4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = __ldcg(s + i + u * kP2PThreads);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) d[i + u * kP2PThreads] = v[u];
  }
  for (; i < end; i += kP2PThreads) d[i] = __ldcg(s + i);
}

// After the whole block's stores: the pair's last block raises *flag = seq (release, system
// scope) and resets the counter for the next launch.
__device__ void signal_pair(uint32_t* counter, int blocks_per_pair, uint32_t* flag, uint32_t seq) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();  // this block's peer stores before its count
    const uint32_t done = atomicAdd(counter, 1u) + 1;
    if (done == static_cast<uint32_t>(blocks_per_pair)) {
      atomicExch(counter, 0u);
      __threadfence_system();  // every block's stores (ordered before their counts) before the flag
      store_release_sys(flag, seq);
    }
  }
}

// Holds the launch open until every combine flag [r][s] reaches seq, so the stream's next event
// marks the end of the round.
__device__ void wait_combine_flags(const P2PRoundArgs& a) {
  const int n_pairs = a.n_senders * a.n_receivers;
  for (int p = threadIdx.x; p < n_pairs; p += blockDim.x) {
    const int r = p / a.n_senders;
    const int s = p % a.n_senders;
    // Twice the timeout: this wait spans both hops, so a silent sender is reported by the receiver
    // that waited for it, not by this wait as well.
    wait_flag(a.combine_flags + p, a.seq, 2 * a.timeout_ns, a.errors + kCombineWait, s, r);
  }
}

__global__ void __launch_bounds__(kP2PThreads) p2p_dispatch_kernel(P2PRoundArgs a) {
  const int pair = blockIdx.x / a.blocks_per_pair;  // s * N + r
  const int part = blockIdx.x % a.blocks_per_pair;
  const int s = pair / a.n_receivers;
  if (s != a.silent_sender) {
    const size_t off = static_cast<size_t>(pair) * a.slice;
    copy_chunk(a.dispatch_inbox + off, a.send_payload + off, a.bytes, part, a.blocks_per_pair);
    signal_pair(a.send_counters + pair, a.blocks_per_pair, a.dispatch_flags + pair, a.seq);
  }
  if (blockIdx.x == 0 && a.wait_in_dispatch) wait_combine_flags(a);
}

__global__ void p2p_combine_wait_kernel(P2PRoundArgs a) { wait_combine_flags(a); }

__global__ void __launch_bounds__(kP2PThreads) p2p_combine_kernel(P2PRoundArgs a) {
  const int pair = blockIdx.x / a.blocks_per_pair;  // r * M + s
  const int part = blockIdx.x % a.blocks_per_pair;
  const int r = pair / a.n_senders;
  const int s = pair % a.n_senders;
  // Receiver r replies only when all of its M messages are in, like an expert worker that needs
  // every attention worker's tokens before it computes.
  for (int s2 = threadIdx.x; s2 < a.n_senders; s2 += blockDim.x) {
    wait_flag(a.dispatch_flags + s2 * a.n_receivers + r, a.seq, a.timeout_ns, a.errors + kDispatchWait, r,
              s2);
  }
  __syncthreads();  // the flags acquired above order the inbox reads below for the whole block
  const std::byte* src = a.dispatch_inbox + static_cast<size_t>(s * a.n_receivers + r) * a.slice;
  copy_chunk(a.combine_inbox + static_cast<size_t>(pair) * a.slice, src, a.bytes, part, a.blocks_per_pair);
  signal_pair(a.recv_counters + pair, a.blocks_per_pair, a.combine_flags + pair, a.seq);
}

}  // namespace

int p2p_blocks_per_pair(size_t bytes, int n_pairs, int cap) {
  const int by_size = static_cast<int>(std::min<size_t>((bytes + kBytesPerBlock - 1) / kBytesPerBlock, 1 << 20));
  const int by_total = std::max(1, kMaxBlocks / std::max(1, n_pairs));
  return std::max(1, std::min({by_size, cap, by_total}));
}

cudaError_t launch_p2p_dispatch(const P2PRoundArgs& args, cudaStream_t stream) {
  const int n_blocks = args.n_senders * args.n_receivers * args.blocks_per_pair;
  p2p_dispatch_kernel<<<n_blocks, kP2PThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launch_p2p_combine(const P2PRoundArgs& args, cudaStream_t stream) {
  const int n_blocks = args.n_senders * args.n_receivers * args.blocks_per_pair;
  p2p_combine_kernel<<<n_blocks, kP2PThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launch_p2p_combine_wait(const P2PRoundArgs& args, cudaStream_t stream) {
  p2p_combine_wait_kernel<<<1, kP2PThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace msi::comm::gpu

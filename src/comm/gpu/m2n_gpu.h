// GPU M2N transports: M senders on one device exchange fixed-size messages with N receivers on
// another (or the same) device, in rounds of dispatch (every sender → every receiver) and combine
// (every receiver → every sender, the same size, echoing what it received). Three transports:
//
//   kP2P         a kernel on the sending device stores the payload straight into the receiving
//                device's buffer over NVLink (peer access), then raises the pair's flag with a
//                system-scope release store; the receiver spins on its flags in a kernel with a
//                timeout. No host round trip, no intermediate copy.
//   kCopyEngine  cudaMemcpyAsync between peer buffers, cuStreamWriteValue32 for the flag,
//                cuStreamWaitValue32 on the receiver: no SM touches the transfer.
//   kNccl        grouped ncclSend/ncclRecv over one communicator of the two devices: the baseline.
//
// Memory (all allocated once by make_gpu_m2n, nothing in the steady state), for P = M·N pairs
// and C = max_bytes rounded up to 256:
//   send device:  dispatch payloads [M][N][C], combine inbox [N][M][C], combine flags [N][M] u32
//   recv device:  dispatch inbox    [M][N][C],                          dispatch flags [M][N] u32
// Pair (s, r) has its own slice and flag in each direction. Flags hold the round's sequence
// number (1, 2, ...), so buffers are reused round after round without resetting; a waiter waits
// for flag >= seq (wrap-safe comparison).
//
// Waits: every device-side wait spins with `timeout` (globaltimer), and every host wait for a
// round is bounded by `timeout` without progress. A silent peer is a DeadlineExceeded naming it
// ("dispatch: receiver 0 waited 200 ms for sender 1 (round 3)"); after such an error the group
// has drained and can run the next round.
//
// Thread-safety: one thread drives a group at a time. Its streams are non-blocking; nothing here
// synchronizes a whole device.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace msi::comm::gpu {

enum class GpuTransport { kP2P, kCopyEngine, kNccl };

const char* gpu_transport_name(GpuTransport t);  // "p2p", "ce", "nccl"
Result<GpuTransport> parse_gpu_transport(const std::string& name);

struct GpuM2NConfig {
  int send_device = 0;  // the M senders live here (and receive the combine)
  int recv_device = 1;  // the N receivers; may equal send_device except for kNccl
  int n_senders = 1;    // M
  int n_receivers = 1;  // N
  size_t max_bytes = 0;  // largest message per pair per direction; a multiple of 16
  // Blocks of the P2P copy kernels per pair at the largest sizes (fewer for small messages).
  int p2p_blocks_per_pair = 16;
  std::chrono::milliseconds timeout{2000};
};

// Fault injection for tests: the sender stays silent in the dispatch of the next round.
struct RoundFault {
  int silent_sender = -1;
};

class GpuM2N {
 public:
  virtual ~GpuM2N() = default;
  virtual GpuTransport transport() const = 0;
  virtual const GpuM2NConfig& config() const = 0;

  // Runs `n_rounds` back-to-back rounds of `bytes` per pair per direction, released
  // together (the host enqueues them behind a gate first, so launch overhead is not timed), and
  // writes each round's time in microseconds: CUDA events on the send device's stream, from
  // before the dispatch to after the last combine flag is seen. Requires bytes % 16 == 0,
  // bytes <= max_bytes, 1 <= n_rounds <= kMaxRoundsPerCall. Blocks until done or timed out.
  virtual Status run_rounds(size_t bytes, float* round_us, int n_rounds, const RoundFault& fault = {}) = 0;

  // Test access, synchronous and slow (not for timing): a pair's dispatch payload on the send
  // device, the dispatch inbox on the receive device, the combine inbox on the send device.
  virtual Status write_payload(int sender, int receiver, const void* data, size_t n) = 0;
  virtual Status read_dispatch_inbox(int sender, int receiver, void* out, size_t n) = 0;
  virtual Status read_combine_inbox(int receiver, int sender, void* out, size_t n) = 0;
};

inline constexpr int kMaxRoundsPerCall = 64;

// OK when the devices exist and (for distinct devices) can access each other's memory, else
// Unavailable saying why. Does not allocate.
Status gpu_m2n_supported(GpuTransport t, const GpuM2NConfig& config);

// Enables peer access, creates the streams, buffers, flags, events (and for kNccl the
// communicator). InvalidArgument for a bad config; Unavailable when the devices cannot do it.
Result<std::unique_ptr<GpuM2N>> make_gpu_m2n(GpuTransport t, const GpuM2NConfig& config);

}  // namespace msi::comm::gpu

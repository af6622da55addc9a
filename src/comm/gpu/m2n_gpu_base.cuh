// What the three GPU M2N transports share: the devices, streams, buffers, flags, the gate and the
// timing of rounds. A transport only says how one round is enqueued (enqueue_round) and how many
// stream operations that takes.
//
// The gate: run_rounds enqueues a gate kernel (comm/gpu/gate.cuh) spinning on a mapped host word
// on both streams, then a batch of rounds, then opens the gate from the host, so the rounds run back to back on the devices and no
// launch latency lands inside a timed round. A batch is sized so each stream holds at most
// kMaxOpsPerBatch queued operations: the host must never block in a launch while the gate is shut.
//
// Stalls: the host waits on the batch's events with a deadline of twice the timeout that restarts
// whenever a round completes. On a stall it reads the flags (on side streams), names the pairs
// whose flag is behind, raises those flags itself so the queued waits drain, and returns
// DeadlineExceeded. Device waits (P2P) time out first and leave WaitError records instead.
//
// Owns every allocation; the destructor drains the streams (bounded) and frees them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda.h>
#include <cuda_runtime.h>

#include "comm/gpu/driver_api.cuh"
#include "comm/gpu/m2n_gpu.h"
#include "comm/gpu/wait_error.cuh"

namespace msi::comm::gpu {

// Sets the current device for a scope and restores the previous one.
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

class GpuM2NBase : public GpuM2N {
 public:
  ~GpuM2NBase() override;

  const GpuM2NConfig& config() const override { return config_; }
  Status run_rounds(size_t bytes, float* round_us, int n_rounds, const RoundFault& fault) override;
  Status write_payload(int sender, int receiver, const void* data, size_t n) override;
  Status read_dispatch_inbox(int sender, int receiver, void* out, size_t n) override;
  Status read_combine_inbox(int receiver, int sender, void* out, size_t n) override;

  // Allocates and zeroes everything; enables peer access. Called once by the factory.
  Status init(const GpuM2NConfig& config);

 protected:
  static constexpr int kMaxOpsPerBatch = 192;

  // Enqueues one round (dispatch then combine) on send_stream_ / recv_stream_, between the start
  // and end events run_rounds records on send_stream_. Must not block on the devices.
  virtual Status enqueue_round(size_t bytes, uint32_t seq, const RoundFault& fault) = 0;
  // Stream operations one round queues on the busier stream (events included).
  virtual int ops_per_round() const = 0;
  // Called once by init() after the buffers exist (NCCL: the communicator).
  virtual Status init_transport() { return Status::ok(); }
  // Called when the host wait stalls, after the flags were diagnosed and raised (NCCL: abort).
  virtual Status on_stall(const std::string& diagnosis);

  int n_pairs() const { return config_.n_senders * config_.n_receivers; }
  uint64_t timeout_ns() const { return static_cast<uint64_t>(config_.timeout.count()) * 1000000ull; }

  GpuM2NConfig config_;
  const DriverApi* cu_ = nullptr;  // stream memory operations
  size_t slice_ = 0;  // bytes between pair slices: max_bytes rounded up to 256

  cudaStream_t send_stream_ = nullptr;  // on send_device: dispatch out, combine in
  cudaStream_t recv_stream_ = nullptr;  // on recv_device: dispatch in, combine out
  cudaStream_t send_side_ = nullptr;    // side streams: flag reads and raises, test copies
  cudaStream_t recv_side_ = nullptr;

  // send device
  std::byte* send_payload_ = nullptr;   // [M][N][slice_]
  std::byte* combine_inbox_ = nullptr;  // [N][M][slice_]
  uint32_t* combine_flags_ = nullptr;   // [N][M]
  uint32_t* send_counters_ = nullptr;   // [M][N] (P2P)
  // receive device
  std::byte* dispatch_inbox_ = nullptr;  // [M][N][slice_]
  uint32_t* dispatch_flags_ = nullptr;   // [M][N]
  uint32_t* recv_counters_ = nullptr;    // [N][M] (P2P)
  // mapped pinned host memory
  WaitError* errors_ = nullptr;  // [kNumWaitSites]
  uint32_t* gate_ = nullptr;     // both streams wait for *gate_ >= gate_gen_
  uint32_t* host_flags_ = nullptr;  // [max(M·N, 1)]: flag reads and raises on a stall

 private:
  Status run_batch(size_t bytes, float* round_us, int n_rounds, const RoundFault& fault);
  // Waits (bounded, restarting on progress) for the batch's end events and the receive stream.
  Status wait_batch(int n_rounds);
  // Reads both flag arrays, raises every flag behind `seq` and says which pairs were behind.
  Status diagnose_and_raise(uint32_t seq, std::string* diagnosis);
  // DeadlineExceeded from the WaitError records (then cleared), or OK when none was claimed.
  Status take_device_errors();
  Status reset_counters();
  Status copy_slice(int device, cudaStream_t side, void* dst, const void* src, size_t n);
  std::string pair_name(bool dispatch, uint32_t waiter, uint32_t peer) const;

  std::array<cudaEvent_t, kMaxRoundsPerCall> start_{};
  std::array<cudaEvent_t, kMaxRoundsPerCall> end_{};
  cudaEvent_t recv_done_ = nullptr;  // on recv_device: end of the batch on recv_stream_
  uint32_t seq_ = 0;
  uint32_t gate_gen_ = 0;
  bool broken_ = false;  // a stall that could not be drained: no more rounds
};

}  // namespace msi::comm::gpu

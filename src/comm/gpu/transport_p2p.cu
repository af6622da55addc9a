// kP2P: one kernel per device per round (comm/gpu/p2p_kernels.cuh). The send device's kernel
// stores the dispatch straight into the receive device's inbox over NVLink and holds its stream
// until the combine flags are up; the receive device's kernel spins on the dispatch flags, then
// stores the echo straight into the send device's combine inbox. SMs do the copies; no host
// round trip and no staging buffer.
#include "comm/gpu/gpu_check.cuh"
#include "comm/gpu/p2p_kernels.cuh"
#include "comm/gpu/transports.cuh"

namespace msi::comm::gpu {
namespace {

class P2PM2N final : public GpuM2NBase {
 public:
  GpuTransport transport() const override { return GpuTransport::kP2P; }

 protected:
  int ops_per_round() const override { return 4; }  // start event, kernel(s), end event

  Status enqueue_round(size_t bytes, uint32_t seq, const RoundFault& fault) override {
    P2PRoundArgs a;
    a.n_senders = config_.n_senders;
    a.n_receivers = config_.n_receivers;
    a.slice = slice_;
    a.bytes = bytes;
    a.blocks_per_pair = p2p_blocks_per_pair(bytes, n_pairs(), config_.p2p_blocks_per_pair);
    a.seq = seq;
    a.silent_sender = fault.silent_sender;
    a.timeout_ns = timeout_ns();
    a.send_payload = send_payload_;
    a.combine_inbox = combine_inbox_;
    a.combine_flags = combine_flags_;
    a.send_counters = send_counters_;
    a.dispatch_inbox = dispatch_inbox_;
    a.dispatch_flags = dispatch_flags_;
    a.recv_counters = recv_counters_;
    a.errors = errors_;  // mapped pinned memory: the same address on both devices (UVA)
    a.wait_in_dispatch = config_.send_device != config_.recv_device;
    {
      DeviceScope scope(config_.send_device);
      MSI_GPU_RETURN_IF_ERROR(launch_p2p_dispatch(a, send_stream_));
    }
    {
      DeviceScope scope(config_.recv_device);
      MSI_GPU_RETURN_IF_ERROR(launch_p2p_combine(a, recv_stream_));
    }
    if (!a.wait_in_dispatch) {
      DeviceScope scope(config_.send_device);
      MSI_GPU_RETURN_IF_ERROR(launch_p2p_combine_wait(a, send_stream_));
    }
    return Status::ok();
  }
};

}  // namespace

std::unique_ptr<GpuM2NBase> new_p2p_m2n() { return std::make_unique<P2PM2N>(); }

}  // namespace msi::comm::gpu

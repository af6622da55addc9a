// kNccl, the baseline: one communicator over the two devices (ncclCommInitAll, rank 0 = send
// device, rank 1 = receive device), created once in init. A round is two NCCL groups driven from
// this one thread: dispatch (for every pair, rank 0 ncclSend / rank 1 ncclRecv into the pair's
// slice) and combine (rank 1 echoes each slice back). Several sends to the same peer in one group
// are matched in issue order, which both ranks share.
//
// NCCL has no per-call timeout: on a host stall the communicator is aborted and the group is done.
#include <vector>

#include "comm/gpu/gpu_check.cuh"
#include "comm/gpu/transports.cuh"

namespace msi::comm::gpu {
namespace {

class NcclM2N final : public GpuM2NBase {
 public:
  GpuTransport transport() const override { return GpuTransport::kNccl; }
  ~NcclM2N() override {
    for (ncclComm_t c : comms_) {
      if (c != nullptr) (void)ncclCommDestroy(c);
    }
  }

 protected:
  // NCCL queues a few operations per group per stream (kernel, event records for its own
  // streams); a generous bound keeps the gated batch short.
  int ops_per_round() const override { return 16; }

  Status init_transport() override {
    if (config_.send_device == config_.recv_device) {
      return Status(StatusCode::kUnavailable, "nccl needs two distinct devices (one rank per GPU)");
    }
    int devs[2] = {config_.send_device, config_.recv_device};
    MSI_NCCL_RETURN_IF_ERROR(ncclCommInitAll(comms_, 2, devs));
    // Connect the peers once, outside any timing: NCCL sets up p2p channels on first use.
    float us[1];
    return run_rounds(16, us, 1, {});
  }

  Status on_stall(const std::string& diagnosis) override {
    for (ncclComm_t& c : comms_) {
      if (c != nullptr) (void)ncclCommAbort(c);
      c = nullptr;
    }
    return Status(StatusCode::kDeadlineExceeded, "nccl: " + diagnosis + " (communicator aborted)");
  }

  Status enqueue_round(size_t bytes, uint32_t seq, const RoundFault& fault) override {
    if (fault.silent_sender >= 0) {
      return Status(StatusCode::kUnimplemented, "nccl: fault injection is not supported");
    }
    if (comms_[0] == nullptr) return Status(StatusCode::kUnavailable, "nccl: communicator aborted");
    const int m = config_.n_senders;
    const int n = config_.n_receivers;
    MSI_NCCL_RETURN_IF_ERROR(ncclGroupStart());
    for (int p = 0; p < n_pairs(); ++p) {  // dispatch [s][r] → [s][r]
      const size_t off = static_cast<size_t>(p) * slice_;
      MSI_NCCL_RETURN_IF_ERROR(ncclSend(send_payload_ + off, bytes, ncclUint8, 1, comms_[0], send_stream_));
      MSI_NCCL_RETURN_IF_ERROR(ncclRecv(dispatch_inbox_ + off, bytes, ncclUint8, 0, comms_[1], recv_stream_));
    }
    MSI_NCCL_RETURN_IF_ERROR(ncclGroupEnd());
    MSI_NCCL_RETURN_IF_ERROR(ncclGroupStart());
    for (int r = 0; r < n; ++r) {  // combine [s][r] → [r][s]
      for (int s = 0; s < m; ++s) {
        const size_t src = static_cast<size_t>(s * n + r) * slice_;
        const size_t dst = static_cast<size_t>(r * m + s) * slice_;
        MSI_NCCL_RETURN_IF_ERROR(ncclSend(dispatch_inbox_ + src, bytes, ncclUint8, 0, comms_[1], recv_stream_));
        MSI_NCCL_RETURN_IF_ERROR(ncclRecv(combine_inbox_ + dst, bytes, ncclUint8, 1, comms_[0], send_stream_));
      }
    }
    MSI_NCCL_RETURN_IF_ERROR(ncclGroupEnd());
    (void)seq;  // NCCL matches by order, not by flags
    return Status::ok();
  }

 private:
  ncclComm_t comms_[2] = {nullptr, nullptr};
};

}  // namespace

std::unique_ptr<GpuM2NBase> new_nccl_m2n() { return std::make_unique<NcclM2N>(); }

}  // namespace msi::comm::gpu

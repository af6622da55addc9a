// kCopyEngine: zero-SM transfers. Each pair's payload moves by cudaMemcpyAsync between peer
// buffers (the copy engine of the stream's device pushes over NVLink), its flag is raised by
// cuStreamWriteValue32 behind the copy (the write carries a memory barrier by default), and the
// other side's stream waits with cuStreamWaitValue32 before its own copies. No kernel runs: the
// spirit of the paper's CPU-driven RDMA, with the GPU front end instead of a NIC doing the work.
//
// NOTE: cuStreamWaitValue32 has no timeout; the bound is the host's (GpuM2NBase::wait_batch),
// which raises the missing flags itself after reporting them.
#include <vector>

#include "comm/gpu/gpu_check.cuh"
#include "comm/gpu/transports.cuh"

namespace msi::comm::gpu {
namespace {

class CopyEngineM2N final : public GpuM2NBase {
 public:
  GpuTransport transport() const override { return GpuTransport::kCopyEngine; }

 protected:
  // send stream: 2 events, M·N copies and flag writes, one batched wait; the receive stream: N
  // batched waits and M·N copies and writes.
  int ops_per_round() const override { return 3 + 2 * n_pairs() + config_.n_receivers; }

  Status init_transport() override {
    ops_.resize(static_cast<size_t>(n_pairs()));
    return Status::ok();
  }

  Status enqueue_round(size_t bytes, uint32_t seq, const RoundFault& fault) override {
    const int m = config_.n_senders;
    const int n = config_.n_receivers;
    {  // dispatch: pair (s, r) from send_payload [s][r] to dispatch_inbox [s][r]
      DeviceScope scope(config_.send_device);
      for (int s = 0; s < m; ++s) {
        if (s == fault.silent_sender) continue;
        for (int r = 0; r < n; ++r) {
          const size_t p = static_cast<size_t>(s * n + r);
          MSI_GPU_RETURN_IF_ERROR(cudaMemcpyAsync(dispatch_inbox_ + p * slice_, send_payload_ + p * slice_, bytes,
                                                  cudaMemcpyDeviceToDevice, send_stream_));
          MSI_CU_RETURN_IF_ERROR(cu_->stream_write_value32(send_stream_, reinterpret_cast<CUdeviceptr>(dispatch_flags_ + p),
                                                      seq, CU_STREAM_WRITE_VALUE_DEFAULT));
        }
      }
    }
    {  // combine: receiver r waits for its M messages, then echoes each back to [r][s]
      DeviceScope scope(config_.recv_device);
      for (int r = 0; r < n; ++r) {
        for (int s = 0; s < m; ++s) {
          set_wait(&ops_[s], dispatch_flags_ + s * n + r, seq);
        }
        MSI_CU_RETURN_IF_ERROR(cu_->stream_batch_mem_op(recv_stream_, static_cast<unsigned>(m), ops_.data(), 0));
        for (int s = 0; s < m; ++s) {
          const size_t src = static_cast<size_t>(s * n + r);
          const size_t dst = static_cast<size_t>(r * m + s);
          MSI_GPU_RETURN_IF_ERROR(cudaMemcpyAsync(combine_inbox_ + dst * slice_, dispatch_inbox_ + src * slice_, bytes,
                                                  cudaMemcpyDeviceToDevice, recv_stream_));
          MSI_CU_RETURN_IF_ERROR(cu_->stream_write_value32(recv_stream_, reinterpret_cast<CUdeviceptr>(combine_flags_ + dst),
                                                      seq, CU_STREAM_WRITE_VALUE_DEFAULT));
        }
      }
    }
    // The send stream holds the round open until every combine flag is up.
    for (int p = 0; p < n_pairs(); ++p) set_wait(&ops_[p], combine_flags_ + p, seq);
    MSI_CU_RETURN_IF_ERROR(cu_->stream_batch_mem_op(send_stream_, static_cast<unsigned>(n_pairs()), ops_.data(), 0));
    return Status::ok();
  }

 private:
  static void set_wait(CUstreamBatchMemOpParams* op, uint32_t* flag, uint32_t seq) {
    *op = {};
    op->waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
    op->waitValue.address = reinterpret_cast<CUdeviceptr>(flag);
    op->waitValue.value = seq;
    op->waitValue.flags = CU_STREAM_WAIT_VALUE_GEQ;
  }

  std::vector<CUstreamBatchMemOpParams> ops_;  // sized once: M·N
};

}  // namespace

std::unique_ptr<GpuM2NBase> new_copy_engine_m2n() { return std::make_unique<CopyEngineM2N>(); }

}  // namespace msi::comm::gpu

// The public entry points of comm/gpu/m2n_gpu.h: names, the capability check and the factory.
#include "comm/gpu/m2n_gpu.h"

#include "comm/gpu/gpu_check.cuh"
#include "comm/gpu/transports.cuh"

namespace msi::comm::gpu {

const char* gpu_transport_name(GpuTransport t) {
  switch (t) {
    case GpuTransport::kP2P: return "p2p";
    case GpuTransport::kCopyEngine: return "ce";
    case GpuTransport::kNccl: return "nccl";
  }
  return "?";
}

Result<GpuTransport> parse_gpu_transport(const std::string& name) {
  for (GpuTransport t : {GpuTransport::kP2P, GpuTransport::kCopyEngine, GpuTransport::kNccl}) {
    if (name == gpu_transport_name(t)) return t;
  }
  return Status(StatusCode::kInvalidArgument, "unknown GPU transport '" + name + "' (p2p, ce or nccl)");
}

Status gpu_m2n_supported(GpuTransport t, const GpuM2NConfig& config) {
  int n_devices = 0;
  MSI_GPU_RETURN_IF_ERROR(cudaGetDeviceCount(&n_devices));
  for (int d : {config.send_device, config.recv_device}) {
    if (d < 0 || d >= n_devices) {
      return error(StatusCode::kUnavailable, "device {} does not exist ({} CUDA devices)", d, n_devices);
    }
  }
  if (config.send_device == config.recv_device) {
    if (t == GpuTransport::kNccl) return Status(StatusCode::kUnavailable, "nccl needs two distinct devices");
  } else {
    for (auto [a, b] : {std::pair{config.send_device, config.recv_device}, std::pair{config.recv_device, config.send_device}}) {
      int can = 0;
      MSI_GPU_RETURN_IF_ERROR(cudaDeviceCanAccessPeer(&can, a, b));
      if (!can) return error(StatusCode::kUnavailable, "device {} cannot access device {}'s memory (no peer access)", a, b);
    }
  }
  // Every transport gates its rounds with stream memory operations (and kCopyEngine signals with them).
  MSI_RETURN_IF_ERROR(driver_api().status());
  return Status::ok();
}

Result<std::unique_ptr<GpuM2N>> make_gpu_m2n(GpuTransport t, const GpuM2NConfig& config) {
  if (config.n_senders < 1 || config.n_receivers < 1 || config.n_senders * config.n_receivers > 1024) {
    return error(StatusCode::kInvalidArgument, "{} senders × {} receivers: need 1..1024 pairs", config.n_senders,
                 config.n_receivers);
  }
  if (config.max_bytes == 0 || config.max_bytes % 16 != 0) {
    return error(StatusCode::kInvalidArgument, "max_bytes {}: need a positive multiple of 16", config.max_bytes);
  }
  if (config.p2p_blocks_per_pair < 1) return Status(StatusCode::kInvalidArgument, "p2p_blocks_per_pair must be >= 1");
  if (config.timeout.count() <= 0) return Status(StatusCode::kInvalidArgument, "timeout must be positive");
  MSI_RETURN_IF_ERROR(gpu_m2n_supported(t, config));
  std::unique_ptr<GpuM2NBase> m2n;
  switch (t) {
    case GpuTransport::kP2P: m2n = new_p2p_m2n(); break;
    case GpuTransport::kCopyEngine: m2n = new_copy_engine_m2n(); break;
    case GpuTransport::kNccl: m2n = new_nccl_m2n(); break;
  }
  Status s = m2n->init(config);
  if (!s.is_ok()) return s.with_context(std::string(gpu_transport_name(t)) + " set-up");
  return std::unique_ptr<GpuM2N>(std::move(m2n));
}

}  // namespace msi::comm::gpu

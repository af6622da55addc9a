// The three transports, one file each (transport_<name>.cu), constructed empty; the factory in
// m2n_gpu.cu calls init() on them.
#pragma once

#include <memory>

#include "comm/gpu/m2n_gpu_base.cuh"

namespace msi::comm::gpu {

std::unique_ptr<GpuM2NBase> new_p2p_m2n();
std::unique_ptr<GpuM2NBase> new_copy_engine_m2n();
std::unique_ptr<GpuM2NBase> new_nccl_m2n();

}  // namespace msi::comm::gpu

// The few CUDA driver calls the transports need (stream memory operations), resolved at run time
// through the runtime's cudaGetDriverEntryPointByVersion instead of linking libcuda: binaries then
// load on machines without a driver (the build machine lists the GPU tests), like the rest of the
// CUDA build, which links the runtime statically.
#pragma once

#include <cudaTypedefs.h>

#include "core/status.h"

namespace msi::comm::gpu {

struct DriverApi {
  PFN_cuStreamWaitValue32_v11070 stream_wait_value32 = nullptr;
  PFN_cuStreamWriteValue32_v11070 stream_write_value32 = nullptr;
  PFN_cuStreamBatchMemOp_v11070 stream_batch_mem_op = nullptr;
  PFN_cuGetErrorString_v6000 get_error_string = nullptr;
};

// Resolved once (thread-safe); Unavailable when the driver lacks one of them.
Result<const DriverApi*> driver_api();

}  // namespace msi::comm::gpu

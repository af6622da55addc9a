#include "comm/gpu/driver_api.cuh"

#include <string>

#include <cuda_runtime.h>

namespace msi::comm::gpu {
namespace {

// The ABI version of each entry point: the _v2 stream memory operations of CUDA 11.7+.
constexpr int kMemOpVersion = 11070;

template <typename Fn>
Status resolve(const char* name, int version, Fn* fn) {
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  void* p = nullptr;
  const cudaError_t err = cudaGetDriverEntryPointByVersion(name, &p, version, cudaEnableDefault, &found);
  if (err != cudaSuccess || found != cudaDriverEntryPointSuccess || p == nullptr) {
    (void)cudaGetLastError();
    return Status(StatusCode::kUnavailable,
                  std::string("CUDA driver entry point ") + name + " not found: " + cudaGetErrorString(err));
  }
  *fn = reinterpret_cast<Fn>(p);
  return Status::ok();
}

Result<DriverApi> load() {
  DriverApi api;
  MSI_RETURN_IF_ERROR(resolve("cuStreamWaitValue32", kMemOpVersion, &api.stream_wait_value32));
  MSI_RETURN_IF_ERROR(resolve("cuStreamWriteValue32", kMemOpVersion, &api.stream_write_value32));
  MSI_RETURN_IF_ERROR(resolve("cuStreamBatchMemOp", kMemOpVersion, &api.stream_batch_mem_op));
  MSI_RETURN_IF_ERROR(resolve("cuGetErrorString", 6000, &api.get_error_string));
  return api;
}

}  // namespace

Result<const DriverApi*> driver_api() {
  static const Result<DriverApi> api = load();  // thread-safe static initialization
  if (!api.is_ok()) return api.status();
  return &api.value();
}

}  // namespace msi::comm::gpu

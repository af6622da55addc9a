// Checked CUDA runtime, driver (through driver_api()) and NCCL calls for comm/gpu. Every call in the transports goes
// through one of these: they return a msi::Status (kUnavailable, "<call>: <error>") from the
// enclosing function, since a failed transfer set-up or launch is something the caller reports
// (no peer access, driver without stream memory operations), not a bug.
#pragma once

#include <string>

#include <cuda_runtime.h>
#include <nccl.h>

#include "comm/gpu/driver_api.cuh"
#include "core/status.h"

namespace msi::comm::gpu::detail {

inline Status cuda_error(const char* call, cudaError_t err) {
  (void)cudaGetLastError();  // clear a non-sticky error so later calls are clean
  return Status(StatusCode::kUnavailable, std::string(call) + ": " + cudaGetErrorString(err));
}

inline Status cu_error(const char* call, CUresult res) {
  const char* s = nullptr;
  auto api = driver_api();
  if (api.is_ok()) (*api)->get_error_string(res, &s);
  return Status(StatusCode::kUnavailable, std::string(call) + ": " + (s ? s : "unknown driver error"));
}

inline Status nccl_error(const char* call, ncclResult_t res) {
  return Status(StatusCode::kUnavailable, std::string(call) + ": " + ncclGetErrorString(res));
}

}  // namespace msi::comm::gpu::detail

#define MSI_GPU_RETURN_IF_ERROR(call)                                                      \
  do {                                                                                     \
    const cudaError_t msi_gpu_err_ = (call);                                               \
    if (msi_gpu_err_ != cudaSuccess) return ::msi::comm::gpu::detail::cuda_error(#call, msi_gpu_err_); \
  } while (0)

#define MSI_CU_RETURN_IF_ERROR(call)                                                       \
  do {                                                                                     \
    const CUresult msi_cu_res_ = (call);                                                   \
    if (msi_cu_res_ != CUDA_SUCCESS) return ::msi::comm::gpu::detail::cu_error(#call, msi_cu_res_); \
  } while (0)

#define MSI_NCCL_RETURN_IF_ERROR(call)                                                     \
  do {                                                                                     \
    const ncclResult_t msi_nccl_res_ = (call);                                             \
    if (msi_nccl_res_ != ncclSuccess) return ::msi::comm::gpu::detail::nccl_error(#call, msi_nccl_res_); \
  } while (0)

// Error checking for CUDA runtime and cuBLAS calls, in the project's two tiers.
//
// Invariant tier: MSI_CUDA_CHECK / MSI_CUBLAS_CHECK abort with file, line, the call and the
// error string. Every CUDA and cuBLAS call in backend/cuda goes through one of them.
// Recoverable tier: MSI_CUDA_RETURN_IF_ERROR returns a msi::Status (kUnavailable) from the
// enclosing function, for set-up failures a caller can report (no device, driver too old).
// The enclosing file must include core/status.h to use it.
//
// Self-contained (no fmt) so .cu files compiled by nvcc as C++17 can include it.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace msi::cuda_detail {

[[noreturn]] inline void cuda_failed(const char* file, int line, const char* call, cudaError_t err) {
  std::fprintf(stderr, "%s:%d: CUDA call failed: %s: %s (%s)\n", file, line, call,
               cudaGetErrorString(err), cudaGetErrorName(err));
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] inline void cublas_failed(const char* file, int line, const char* call,
                                       cublasStatus_t st) {
  std::fprintf(stderr, "%s:%d: cuBLAS call failed: %s: %s (%s)\n", file, line, call,
               cublasGetStatusString(st), cublasGetStatusName(st));
  std::fflush(stderr);
  std::abort();
}

}  // namespace msi::cuda_detail

#define MSI_CUDA_CHECK(call)                                                      \
  do {                                                                            \
    const cudaError_t msi_cuda_err_ = (call);                                     \
    if (msi_cuda_err_ != cudaSuccess) {                                           \
      ::msi::cuda_detail::cuda_failed(__FILE__, __LINE__, #call, msi_cuda_err_);  \
    }                                                                             \
  } while (0)

#define MSI_CUBLAS_CHECK(call)                                                      \
  do {                                                                              \
    const cublasStatus_t msi_cublas_st_ = (call);                                   \
    if (msi_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                                  \
      ::msi::cuda_detail::cublas_failed(__FILE__, __LINE__, #call, msi_cublas_st_); \
    }                                                                               \
  } while (0)

// After a kernel launch: catches bad launch configurations at the call site. Does not wait for
// the kernel (no sync); faults inside a kernel surface at the next checked call.
#define MSI_CUDA_CHECK_LAUNCH() MSI_CUDA_CHECK(cudaGetLastError())

// Recoverable: `return`s ::msi::Status(kUnavailable, "<call>: <error string>").
#define MSI_CUDA_RETURN_IF_ERROR(call)                                                   \
  do {                                                                                   \
    const cudaError_t msi_cuda_err_ = (call);                                            \
    if (msi_cuda_err_ != cudaSuccess) {                                                  \
      (void)cudaGetLastError(); /* clear the sticky-free error so later calls are clean */ \
      return ::msi::Status(::msi::StatusCode::kUnavailable,                              \
                           std::string(#call) + ": " + cudaGetErrorString(msi_cuda_err_)); \
    }                                                                                    \
  } while (0)

// CudaBackend: memory and events shared with other processes of this host (CUDA IPC). Exports are
// cudaIpcGetMemHandle / cudaIpcGetEventHandle; imports open them on this backend's device (peer
// access enabled lazily by the driver) and stay open until the backend is destroyed.
#include <cstring>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_event.h"

namespace msi {

namespace {

template <typename Handle>
std::vector<std::byte> handle_bytes(const Handle& h) {
  std::vector<std::byte> out(sizeof(Handle));
  std::memcpy(out.data(), &h, sizeof(Handle));
  return out;
}

template <typename Handle>
Result<Handle> handle_from(std::span<const std::byte> bytes, const char* what) {
  Handle h{};
  if (bytes.size() != sizeof(Handle)) {
    return error(StatusCode::kInvalidArgument, "cuda: a {} handle is {} bytes, got {}", what,
                 sizeof(Handle), bytes.size());
  }
  std::memcpy(&h, bytes.data(), sizeof(Handle));
  return h;
}

}  // namespace

std::unique_ptr<DeviceEvent> CudaBackend::make_shared_event() {
  return std::make_unique<CudaEvent>(index_, cudaEventDisableTiming | cudaEventInterprocess);
}

Result<std::vector<std::byte>> CudaBackend::export_memory(const Tensor& allocation) {
  if (allocation.data == nullptr)
    return error(StatusCode::kInvalidArgument, "cuda: export of an empty tensor");
  make_current();
  cudaIpcMemHandle_t h{};
  MSI_CUDA_RETURN_IF_ERROR(cudaIpcGetMemHandle(&h, allocation.data));
  return handle_bytes(h);
}

Result<void*> CudaBackend::import_memory(std::span<const std::byte> handle) {
  MSI_ASSIGN_OR_RETURN(cudaIpcMemHandle_t h, handle_from<cudaIpcMemHandle_t>(handle, "memory"));
  make_current();
  void* p = nullptr;
  MSI_CUDA_RETURN_IF_ERROR(cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess));
  imported_.push_back(p);
  return p;
}

Result<std::vector<std::byte>> CudaBackend::export_event(DeviceEvent& event) {
  auto& e = static_cast<CudaEvent&>(event);
  if (!e.interprocess()) {
    return error(StatusCode::kInvalidArgument,
                 "cuda: only events from make_shared_event can be exported");
  }
  make_current();
  cudaIpcEventHandle_t h{};
  MSI_CUDA_RETURN_IF_ERROR(cudaIpcGetEventHandle(&h, e.get()));
  return handle_bytes(h);
}

Result<std::unique_ptr<DeviceEvent>> CudaBackend::import_event(std::span<const std::byte> handle) {
  MSI_ASSIGN_OR_RETURN(cudaIpcEventHandle_t h, handle_from<cudaIpcEventHandle_t>(handle, "event"));
  make_current();
  cudaEvent_t opened = nullptr;
  MSI_CUDA_RETURN_IF_ERROR(cudaIpcOpenEventHandle(&opened, h));
  return std::unique_ptr<DeviceEvent>(std::make_unique<CudaEvent>(index_, opened));
}

void CudaBackend::close_imported() {
  for (void* p : imported_) {
    const cudaError_t e = cudaIpcCloseMemHandle(p);
    if (e != cudaSuccess && e != cudaErrorCudartUnloading) MSI_CUDA_CHECK(e);
  }
  imported_.clear();
}

}  // namespace msi

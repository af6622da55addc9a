// CudaEvent: a cudaEvent_t owned by the CUDA backend, made on one device. Plain events
// (cudaEventDisableTiming) order streams of one process; shared ones add cudaEventInterprocess so
// that another process can open them (CudaBackend::export_event / import_event). An imported event
// belongs to the exporting process: destroying it here only drops this process's reference.
#pragma once

#include <cuda_runtime.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_check.h"

namespace msi {

class CudaEvent final : public DeviceEvent {
 public:
  CudaEvent(int device, unsigned flags) : device_(device), flags_(flags) {
    MSI_CUDA_CHECK(cudaSetDevice(device));
    MSI_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags));
  }
  // Takes an event opened with cudaIpcOpenEventHandle.
  CudaEvent(int device, cudaEvent_t opened)
      : device_(device), flags_(cudaEventInterprocess), event_(opened) {}
  ~CudaEvent() override {
    if (cudaSetDevice(device_) == cudaSuccess) (void)cudaEventDestroy(event_);
  }
  cudaEvent_t get() const { return event_; }
  bool interprocess() const { return (flags_ & cudaEventInterprocess) != 0; }

 private:
  int device_;
  unsigned flags_;
  cudaEvent_t event_ = nullptr;
};

}  // namespace msi

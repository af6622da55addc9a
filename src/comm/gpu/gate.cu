#include "comm/gpu/gate.cuh"

#include "comm/gpu/wait_error.cuh"

namespace msi::comm::gpu {
namespace {

__global__ void gate_kernel(const uint32_t* gate, uint32_t gen, uint64_t timeout_ns) {
  if (threadIdx.x != 0) return;
  const uint64_t t0 = global_timer_ns();
  while (!seq_reached(*reinterpret_cast<const volatile uint32_t*>(gate), gen) &&
         global_timer_ns() - t0 < timeout_ns) {
    __nanosleep(100);
  }
}

}  // namespace

cudaError_t launch_gate(const uint32_t* gate, uint32_t gen, uint64_t timeout_ns, cudaStream_t stream) {
  gate_kernel<<<1, 32, 0, stream>>>(gate, gen, timeout_ns);
  return cudaGetLastError();
}

}  // namespace msi::comm::gpu

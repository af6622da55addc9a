#include "bench/ceilings.h"

#include <algorithm>

namespace msi {

DeviceCeilings measure_ceilings(Backend& backend, int64_t copy_bytes, int64_t gemm_size, int reps) {
  DeviceCeilings c;
  c.copy_bytes = copy_bytes;
  c.gemm_size = gemm_size;
  std::unique_ptr<DeviceClock> clock = backend.make_clock(2);
  {
    const DType dt = backend.compute_dtype();
    const int64_t n = copy_bytes / static_cast<int64_t>(dtype_size(dt));
    OwnedTensor a = backend.alloc(dt, {n}), b = backend.alloc(dt, {n});
    backend.copy(b.tensor, a.tensor);  // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      clock->record(0);
      backend.copy(b.tensor, a.tensor);
      clock->record(1);
      best = std::min(best, clock->elapsed_ms(0, 1));
    }
    c.hbm_gbps = 2.0 * static_cast<double>(copy_bytes) / (best * 1e-3) / 1e9;
  }
  {
    const DType dt = backend.compute_dtype();
    const int64_t n = gemm_size;
    OwnedTensor x = backend.alloc(dt, {n, n}), w = backend.alloc(dt, {n, n}), y = backend.alloc(dt, {n, n});
    backend.linear(x.tensor, w.tensor, Tensor{}, y.tensor);  // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      clock->record(0);
      backend.linear(x.tensor, w.tensor, Tensor{}, y.tensor);
      clock->record(1);
      best = std::min(best, clock->elapsed_ms(0, 1));
    }
    c.bf16_tflops = 2.0 * static_cast<double>(n) * n * n / (best * 1e-3) / 1e12;
  }
  backend.synchronize();
  return c;
}

}  // namespace msi

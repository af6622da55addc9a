// The two roofline ceilings of a device, measured through its Backend in the same run as the
// thing they bound (METHOD.md): HBM bandwidth (a large device-to-device copy: bytes read + bytes
// written over the time) and bf16 tensor throughput (a large square GEMM).
#pragma once

#include "backend/backend.h"

namespace msi {

struct DeviceCeilings {
  double hbm_gbps = 0.0;      // GB/s (1e9 bytes), best of the repetitions
  double bf16_tflops = 0.0;   // TFLOP/s (1e12), best of the repetitions
  int64_t copy_bytes = 0;     // size of the copied buffer
  int64_t gemm_size = 0;      // n of the n×n×n GEMM
};

// Allocates its buffers (about 2 × copy_bytes + 3 n² elements), times `reps` repetitions after a
// warm-up with the backend's DeviceClock, frees them. Sizes default to what saturates an H100.
DeviceCeilings measure_ceilings(Backend& backend, int64_t copy_bytes = int64_t{1} << 30,
                                int64_t gemm_size = 8192, int reps = 10);

}  // namespace msi

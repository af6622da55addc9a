// The CUDA backend's checked dtype and typed device pointers of a Tensor, shared by its op files
// (cuda_backend*.cc). Internal to backend/cuda.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "backend/tensor.h"
#include "core/check.h"
#include "core/dtype.h"

namespace msi::cuda_access {

using bf16 = __nv_bfloat16;

inline void check_dtype(const Tensor& t, DType want, const char* what) {
  MSI_CHECK(t.dtype == want, "cuda: {} must be {}, is {}", what, dtype_name(want), dtype_name(t.dtype));
}

inline const bf16* cbf(const Tensor& t) { return static_cast<const bf16*>(t.data); }
inline bf16* bf(const Tensor& t) { return static_cast<bf16*>(t.data); }
inline const int32_t* ci32(const Tensor& t) { return static_cast<const int32_t*>(t.data); }
inline int32_t* i32(const Tensor& t) { return static_cast<int32_t*>(t.data); }

}  // namespace msi::cuda_access

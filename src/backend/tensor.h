// Tensor: a non-owning, row-major view of device (or host) memory, and OwnedTensor, which also
// owns its buffer. Views are trivially copyable and cheap; ownership stays with whoever holds the
// OwnedTensor (weights in a role, activations in a workspace).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>

#include "core/check.h"
#include "core/dtype.h"

namespace msi {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;
};

inline constexpr int kMaxDims = 4;

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::array<int64_t, kMaxDims> shape{};
  int ndim = 0;

  static Tensor view(void* data, DType dtype, std::initializer_list<int64_t> dims) {
    Tensor t;
    t.data = data;
    t.dtype = dtype;
    MSI_CHECK(dims.size() <= static_cast<size_t>(kMaxDims), "too many dims");
    for (int64_t d : dims) t.shape[t.ndim++] = d;
    return t;
  }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // Rows when viewed as a matrix [rows, last dim].
  int64_t rows() const { return ndim == 0 ? 0 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 0 : shape[ndim - 1]; }

  template <typename T>
  T* as() const { return static_cast<T*>(data); }
  // Rows [begin, begin + n) of the first dimension.
  Tensor slice_rows(int64_t begin, int64_t n) const {
    MSI_CHECK(ndim >= 1 && begin >= 0 && begin + n <= shape[0], "slice [{}, {}) of {}", begin,
              begin + n, shape[0]);
    Tensor t = *this;
    t.shape[0] = n;
    t.data = static_cast<char*>(data) + static_cast<size_t>(begin) * (nbytes() / shape[0]);
    return t;
  }
  // Same bytes, another shape with the same element count.
  Tensor reshape(std::initializer_list<int64_t> dims) const {
    Tensor t = view(data, dtype, dims);
    MSI_CHECK(t.numel() == numel(), "reshape changes element count");
    return t;
  }
};

// A buffer from a backend's allocator, freed by that backend's deleter.
using Buffer = std::unique_ptr<void, std::function<void(void*)>>;

struct OwnedTensor {
  Buffer buffer;
  Tensor tensor;
  bool empty() const { return tensor.data == nullptr; }
};

}  // namespace msi

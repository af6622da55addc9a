#include "backend/registry.h"

#include <fmt/ranges.h>

#include "backend/cpu/cpu_backend.h"
#if defined(MSI_CUDA)
#include <charconv>

#include "backend/cuda/cuda_backend.h"
#endif

namespace msi {

std::vector<std::string> compiled_backends() {
  std::vector<std::string> names = {"cpu"};
#if defined(MSI_CUDA)
  names.push_back("cuda");
#endif
  return names;
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& device) {
  if (device == "cpu") return std::unique_ptr<Backend>(std::make_unique<CpuBackend>());
#if defined(MSI_CUDA)
  // "cuda" is "cuda:0"; "cuda:N" picks device N.
  if (device == "cuda") return CudaBackend::create(0);
  if (device.rfind("cuda:", 0) == 0) {
    const char* begin = device.data() + 5;
    const char* end = device.data() + device.size();
    int index = -1;
    const auto [ptr, ec] = std::from_chars(begin, end, index);
    if (begin == end || ec != std::errc() || ptr != end || index < 0) {
      return error(StatusCode::kInvalidArgument, "bad CUDA device '{}' (want cuda or cuda:N)",
                   device);
    }
    return CudaBackend::create(index);
  }
#endif
  return error(StatusCode::kInvalidArgument, "unknown device '{}' (this build has: {})", device,
               fmt::join(compiled_backends(), ", "));
}

}  // namespace msi

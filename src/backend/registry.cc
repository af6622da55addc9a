#include "backend/registry.h"

#include <fmt/ranges.h>

#include "backend/cpu/cpu_backend.h"

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
  return error(StatusCode::kInvalidArgument, "unknown device '{}' (this build has: {})", device,
               fmt::join(compiled_backends(), ", "));
}

}  // namespace msi

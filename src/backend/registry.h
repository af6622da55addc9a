// The backend registry: the one place that knows which backends were compiled in.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/status.h"

namespace msi {

// "cpu", or "cuda" / "cuda:N" when built with MSI_CUDA. An unknown name or a bad index is
// InvalidArgument; a CUDA device that is not there (or no driver) is Unavailable.
Result<std::unique_ptr<Backend>> make_backend(const std::string& device);
std::vector<std::string> compiled_backends();

}  // namespace msi

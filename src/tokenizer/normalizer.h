// Normalizers of tokenizer.json ("normalizer"): NFC, NFD, NFKC, NFKD (utf8proc), Prepend,
// Replace (String or Regex pattern), Strip and Sequence. Any other type fails at
// load with a message naming it.
//
// Immutable after construction; thread-safe. normalize() allocates its result.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Requires valid UTF-8; the result is valid UTF-8.
  virtual Status normalize(std::string_view text, std::string* out) const = 0;
};

// nullptr for a JSON null (no normalizer). Unimplemented naming the type if unsupported.
Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j);

}  // namespace msi::tok

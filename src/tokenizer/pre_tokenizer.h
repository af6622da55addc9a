// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): ByteLevel, Split, Metaspace, Digits and
// Sequence, with the `tokenizers` library's semantics (split behaviours Removed, Isolated,
// MergedWithPrevious, MergedWithNext, Contiguous; invert). Any other type fails at load with a
// message naming it.
//
// Immutable after construction; thread-safe. pre_tokenize() allocates.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::tok {

// One piece of the text on its way to the model.
struct PreToken {
  std::string text;
  // The piece starts the whole input (offset 0 of the original text): Metaspace's
  // prepend_scheme "first" adds its replacement only there.
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its sub-pieces, in order; empty pieces are dropped. Requires valid
  // UTF-8 pieces.
  virtual Status pre_tokenize(std::vector<PreToken>* pieces) const = 0;
};

// nullptr for a JSON null. Unimplemented naming the type if unsupported.
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j);

}  // namespace msi::tok

// Decoders of tokenizer.json ("decoder"): ByteLevel, Metaspace, Replace, ByteFallback, Fuse,
// Strip and Sequence, turning tokens back into text as `tokenizers` does (a chain of
// token-list → token-list steps, joined at the end). Any other type fails at load with a message
// naming it. Also transformers' clean_up_tokenization.
//
// Immutable after construction; thread-safe. decode_chain() allocates.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::tok {

struct DecodeToken {
  std::string text;
  // An added token (e.g. <|im_end|>): ByteLevel passes its text through instead of mapping it
  // back to bytes.
  bool added = false;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Status decode_chain(std::vector<DecodeToken>* tokens) const = 0;
};

// nullptr for a JSON null. Unimplemented naming the type if unsupported.
Result<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j);

// transformers' clean_up_tokenization: removes the space before . ? ! , and English
// contractions (" n't", " 's", ...), and turns " ' " into "'".
std::string clean_up_tokenization(std::string text);

}  // namespace msi::tok

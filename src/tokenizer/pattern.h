// Pattern: the {"String": "..."} or {"Regex": "..."} pattern of tokenizer.json's Split
// pre-tokenizer and Replace normalizer/decoder. A String pattern matches literally.
//
// Immutable after construction; thread-safe. Searches allocate.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/regex.h"

namespace msi::tok {

class Pattern {
 public:
  // InvalidArgument if `j` is neither form or the regex does not compile.
  static Result<Pattern> from_json(const nlohmann::json& j);
  static Pattern literal(std::string s);

  // All non-overlapping matches, left to right (an empty literal matches nothing).
  Status find_all(std::string_view text, std::vector<Span>* out) const;
  // `text` with every match replaced by `content`.
  Status replace_all(std::string_view text, std::string_view content, std::string* out) const;

 private:
  std::string literal_;
  std::optional<Regex> regex_;
};

}  // namespace msi::tok

// Regex: a compiled PCRE2 pattern (UTF + UCP, JIT when available) for the tokenizer's
// pre-tokenizer, normalizer and decoder patterns (\p{L}, lookahead, (?i:...) as Oniguruma and
// the `tokenizers` library accept them; see translate() for the escapes whose meaning differs).
//
// Owns the compiled code; immutable after compile and thread-safe: every search makes its own
// match data, and the JIT stack is per thread. Searches allocate a little.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace msi::tok {

// A half-open byte range [begin, end) of a match.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

class Regex {
 public:
  // InvalidArgument with PCRE2's message and the offset if the pattern does not compile.
  static Result<Regex> compile(std::string_view pattern);

  // Replaces *out with all non-overlapping matches, left to right, in `text` (valid UTF-8,
  // unchecked). After an empty match the search resumes one character later, as Oniguruma's and
  // JavaScript's global searches do. Internal if PCRE2 gives up (e.g. its match limit).
  Status find_all(std::string_view text, std::vector<Span>* out) const;

  const std::string& pattern() const { return pattern_; }

  // The PCRE2 spelling of an Oniguruma pattern: \s, \S, \w, \W, \h and \H get Oniguruma's
  // (and `tokenizers`') meaning — Unicode White_Space, word characters (letters, marks, digits,
  // connectors), hex digits — which PCRE2 spells differently.
  static std::string translate(std::string_view pattern);

 private:
  struct Code;
  explicit Regex(std::shared_ptr<const Code> code, std::string pattern)
      : code_(std::move(code)), pattern_(std::move(pattern)) {}

  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace msi::tok

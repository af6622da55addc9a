// Jinja lexer: template source → tokens, reproducing Jinja2's lexer rules byte for byte —
// newline normalization and the dropped final newline, `{%- -%}` whitespace control,
// trim_blocks (one newline after a block or comment tag), lstrip_blocks (whitespace before a
// block or comment tag at the start of a line), `{%+`/`+%}` overrides, raw blocks, and
// brace balancing inside tags (`{{ {'a': 1}}}`).
//
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace msi::jinja {

struct Options {
  bool trim_blocks = false;
  bool lstrip_blocks = false;
  bool keep_trailing_newline = false;
};

enum class TokenType {
  kData,  // template text (raw blocks included)
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,    // text: the decoded literal
  kInteger,   // int_value
  kFloat,     // float_value
  kOperator,  // text: "+", "//", "(", ...
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

// InvalidArgument "line N: ..." for an unterminated comment or raw block, an unexpected
// character, or unbalanced brackets inside a tag. The last token is kEof.
Result<std::vector<Token>> tokenize(std::string_view source, const Options& options);

}  // namespace msi::jinja

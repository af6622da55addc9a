// Jinja parser: tokens → syntax tree, with Jinja2's grammar and precedence (conditional
// expressions, or/and/not, chained comparisons and `in`, + -, ~, * / // %, ** (left
// associative, as in Jinja), unary - +, postfix . [] (), then filters and `is` tests) and its
// statements (if/elif/else, for/else with `if` filter, set, set blocks, macro, call, filter,
// with, break/continue, raw, and transformers' generation block).
//
// Pure; thread-safe.
#pragma once

#include <string_view>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace msi::jinja {

// InvalidArgument "line N: <message>" for a syntax error.
Result<Body> parse(std::string_view source, const Options& options);

}  // namespace msi::jinja

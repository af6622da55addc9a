// Queries over a parsed syntax tree.
//
// Pure; thread-safe.
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace msi::jinja {

// Whether any expression in `body` (nested blocks included) reads the variable `name`; Jinja
// uses this to decide whether a macro accepts extra arguments (`varargs`, `kwargs`) and a
// `caller`.
bool body_uses_name(const Body& body, std::string_view name);

}  // namespace msi::jinja

// The Jinja evaluator: walks a parsed tree with a set of variables and produces the output
// text, with Jinja2's scoping (each for-loop iteration, macro call, `with` and call block gets
// its own scope; `if` does not; `set` writes the innermost scope; namespace attributes are
// shared), the `loop` object, macros with varargs/kwargs/caller, and loop controls.
//
// One render at a time per call; the tree is only read, so concurrent renders of one tree are
// safe. Allocates freely (values, scopes, output).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

using Variables = std::vector<std::pair<std::string, Value>>;

// Renders `body`. Names resolve to `context` first, then `globals`, then Jinja's default
// globals (range, namespace, dict, joiner). Errors are InvalidArgument "line N: <message>",
// N being the line of the innermost construct that failed.
Result<std::string> render_body(const Body& body, const Variables& context,
                                const Variables& globals);

}  // namespace msi::jinja

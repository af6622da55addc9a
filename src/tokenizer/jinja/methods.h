// Methods of Python's str, list, tuple and dict that templates call (`s.startswith('<')`,
// `d.items()`, `text.split('</think>')[-1].lstrip('\n')` ...), bound to their receiver.
//
// Pure; thread-compatible.
#pragma once

#include <optional>
#include <string_view>

#include "tokenizer/jinja/value.h"

namespace msi::jinja {

// `self.name` when `self` (a str, list, tuple or dict) has a method of that name: a callable
// bound to `self`, or, for a method the immutable sandbox forbids (list.append, dict.update
// ...), an Undefined that raises "access to attribute ... is unsafe." when used. nullopt when
// the type has no such attribute.
std::optional<Value> find_method(const Value& self, std::string_view name);

}  // namespace msi::jinja

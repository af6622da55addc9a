// Jinja2's builtin filters (`|trim`, `|tojson`, `|selectattr` ...), tests (`is defined`,
// `is string` ...) and globals (range, namespace, dict, joiner), with Jinja 3.1 semantics.
// `tojson` is transformers' override: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False), without Jinja's HTML escaping and key sorting.
//
// Stateless functions; thread-safe. Filters that Jinja implements as generators (map, select,
// reject, selectattr, rejectattr, reverse of a list, items, unique, batch, slice) return a
// single-pass iterator Value, so that truthiness and `|length` behave as in Python.
#pragma once

#include <optional>
#include <string_view>

#include "core/status.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

using FilterFn = Result<Value> (*)(const Value& input, const CallArgs& args);
using TestFn = Result<bool> (*)(const Value& input, const CallArgs& args);

// Null when there is no such filter/test.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// "No filter named 'x'." / "No test named 'x'." for unknown names.
Result<Value> apply_filter(std::string_view name, const Value& input, const CallArgs& args);
Result<bool> apply_test(std::string_view name, const Value& input, const CallArgs& args);

// Jinja's default globals: range, dict, namespace, joiner. nullopt for other names.
std::optional<Value> find_global(std::string_view name);

// The per-file filter tables behind find_filter.
FilterFn find_text_filter(std::string_view name);
FilterFn find_sequence_filter(std::string_view name);

// Looks up a dotted attribute path as Jinja's filters do ("function.name", "items.0"): each
// part through obj[part] with attribute fallback; integer parts index.
Result<Value> get_attribute_path(const Value& obj, const Value& path);

}  // namespace msi::jinja

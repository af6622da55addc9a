// Turning Values into text exactly as Python does: str() for `{{ }}` output, repr() for values
// inside containers, float repr (shortest round-trip, 1e-05, 1e+16), and json.dumps for the
// `tojson` filter (transformers' override: ensure_ascii=False, no HTML escaping).
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

// repr(float) / str(float): "1.0", "0.1", "1e-05", "1e+16", "inf", "nan".
std::string py_float_repr(double x);
// str(v): what `{{ v }}` prints. Undefined prints as "".
std::string py_str(const Value& v);
// repr(v): strings quoted, containers nested ("{'a': [1, 'x']}").
std::string py_repr(const Value& v);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: one line; else the per-level indent string
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// json.dumps(v, ...). TypeError-like InvalidArgument for values JSON cannot hold (Undefined,
// callables, non-string-like dict keys).
Result<std::string> py_json_dumps(const Value& v, const JsonDumpOptions& options);

// printf-style `fmt % args` (str % x and the `format` filter): a tuple supplies positional
// arguments, a dict named ones (%(name)s), anything else is the single argument.
Result<std::string> py_percent_format(std::string_view fmt, const Value& args);

}  // namespace msi::jinja

// Binding a call's positional and keyword arguments to a Python-style parameter list, for the
// builtin filters, tests, methods and globals.
//
// Values only; thread-compatible.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

class BoundArgs {
 public:
  // Binds `call` to `params` (in order); the first `n_required` must be given. Errors like
  // Python's TypeError for too many arguments, unknown or repeated keywords, missing ones.
  static Result<BoundArgs> bind(std::string_view fn, const CallArgs& call,
                                std::initializer_list<std::string_view> params,
                                size_t n_required = 0);

  bool has(size_t i) const { return values_[i].has_value(); }
  const Value& get(size_t i) const { return *values_[i]; }  // requires has(i)
  Value get_or(size_t i, Value dflt) const { return has(i) ? get(i) : std::move(dflt); }
  // A parameter that defaults to None when absent.
  Value get_or_none(size_t i) const { return has(i) ? get(i) : Value::none(); }

 private:
  std::vector<std::optional<Value>> values_;
};

// Typed views of an argument with Python-like TypeErrors naming the function.
Result<std::string> arg_string(std::string_view fn, const Value& v);
Result<int64_t> arg_int(std::string_view fn, const Value& v);
// nullopt for None.
Result<std::optional<std::string>> arg_optional_string(std::string_view fn, const Value& v);

}  // namespace msi::jinja

#include "tokenizer/jinja/args.h"

#include <fmt/format.h>

#include "tokenizer/jinja/ops.h"

namespace msi::jinja {

Result<BoundArgs> BoundArgs::bind(std::string_view fn, const CallArgs& call,
                                  std::initializer_list<std::string_view> params,
                                  size_t n_required) {
  BoundArgs b;
  b.values_.resize(params.size());
  if (call.args.size() > params.size()) {
    return error(StatusCode::kInvalidArgument, "{}() takes at most {} argument(s) ({} given)", fn,
                 params.size(), call.args.size());
  }
  for (size_t i = 0; i < call.args.size(); ++i) b.values_[i] = call.args[i];
  for (const auto& [name, value] : call.kwargs) {
    size_t i = 0;
    for (std::string_view p : params) {
      if (p == name) break;
      ++i;
    }
    if (i == params.size()) {
      return error(StatusCode::kInvalidArgument, "{}() got an unexpected keyword argument '{}'", fn,
                   name);
    }
    if (b.values_[i]) {
      return error(StatusCode::kInvalidArgument, "{}() got multiple values for argument '{}'", fn,
                   name);
    }
    b.values_[i] = value;
  }
  size_t i = 0;
  for (std::string_view p : params) {
    if (i < n_required && !b.values_[i]) {
      return error(StatusCode::kInvalidArgument, "{}() missing required argument '{}'", fn, p);
    }
    ++i;
  }
  return b;
}

Result<std::string> arg_string(std::string_view fn, const Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_undefined()) return undefined_error(v);
  return error(StatusCode::kInvalidArgument, "{}() argument must be str, not {}", fn, type_name(v));
}

Result<int64_t> arg_int(std::string_view fn, const Value& v) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) return undefined_error(v);
  return error(StatusCode::kInvalidArgument, "{}() argument must be an integer, not {}", fn,
               type_name(v));
}

Result<std::optional<std::string>> arg_optional_string(std::string_view fn, const Value& v) {
  if (v.is_none()) return std::optional<std::string>();
  MSI_ASSIGN_OR_RETURN(std::string s, arg_string(fn, v));
  return std::optional<std::string>(std::move(s));
}

}  // namespace msi::jinja

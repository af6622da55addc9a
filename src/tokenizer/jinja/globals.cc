// Jinja's default globals available to every template: range, dict, namespace, joiner.
#include <memory>

#include <fmt/format.h>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/ops.h"

namespace msi::jinja {

namespace {

// The sandbox refuses larger ranges (jinja2.sandbox.MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Result<Value> g_range(const CallArgs& a) {
  if (!a.kwargs.empty())
    return error(StatusCode::kInvalidArgument, "range() takes no keyword arguments");
  if (a.args.empty() || a.args.size() > 3) {
    return error(StatusCode::kInvalidArgument, "range expected 1 to 3 arguments, got {}",
                 a.args.size());
  }
  int64_t bounds[3] = {0, 0, 1};
  for (size_t i = 0; i < a.args.size(); ++i) {
    const Value& v = a.args[i];
    if (!v.is_int() && !v.is_bool()) {
      if (v.is_undefined()) return undefined_error(v);
      return error(StatusCode::kInvalidArgument, "'{}' object cannot be interpreted as an integer",
                   type_name(v));
    }
  }
  if (a.args.size() == 1) {
    bounds[1] = a.args[0].as_int();
  } else {
    bounds[0] = a.args[0].as_int();
    bounds[1] = a.args[1].as_int();
    if (a.args.size() == 3) bounds[2] = a.args[2].as_int();
  }
  auto [start, stop, step] = bounds;
  if (step == 0) return error(StatusCode::kInvalidArgument, "range() arg 3 must not be zero");
  int64_t n = 0;
  if (step > 0 && start < stop) n = (stop - start - 1) / step + 1;
  if (step < 0 && start > stop) n = (start - stop - 1) / (-step) + 1;
  if (n > kMaxRange) {
    return error(StatusCode::kInvalidArgument,
                 "Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
  }
  ValueList out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(Value::integer(start + i * step));
  return Value::list(std::move(out));
}

// dict(...) / namespace(...): an optional mapping or iterable of pairs, then keywords.
Status fill_mapping(Dict& d, const CallArgs& a, std::string_view fn) {
  if (a.args.size() > 1) {
    return error(StatusCode::kInvalidArgument, "{} expected at most 1 argument, got {}", fn,
                 a.args.size());
  }
  if (a.args.size() == 1) {
    const Value& init = a.args[0];
    if (init.is_mapping() || init.kind() == Value::Kind::kNamespace) {
      for (const auto& [k, v] : init.dict().entries()) d.set(k, v);
    } else {
      MSI_ASSIGN_OR_RETURN(ValueList pairs, iterate(init));
      for (const Value& p : pairs) {
        MSI_ASSIGN_OR_RETURN(ValueList kv, iterate(p));
        if (kv.size() != 2) {
          return error(StatusCode::kInvalidArgument,
                       "dictionary update sequence element has length {}; 2 is required",
                       kv.size());
        }
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : a.kwargs) d.set(k, v);
  return Status::ok();
}

Result<Value> g_dict(const CallArgs& a) {
  Value d = Value::new_dict();
  MSI_RETURN_IF_ERROR(fill_mapping(d.dict(), a, "dict"));
  return d;
}

Result<Value> g_namespace(const CallArgs& a) {
  Value ns = Value::new_namespace();
  MSI_RETURN_IF_ERROR(fill_mapping(ns.dict(), a, "namespace"));
  return ns;
}

// joiner(sep): a callable returning "" the first time and `sep` afterwards.
Result<Value> g_joiner(const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("joiner", a, {"sep"}));
  Value sep = b.get_or(0, Value::string(", "));
  auto used = std::make_shared<bool>(false);
  return Value::callable("joiner", [sep, used](const CallArgs&) -> Result<Value> {
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return sep;
  });
}

}  // namespace

std::optional<Value> find_global(std::string_view name) {
  if (name == "range") return Value::callable("range", g_range);
  if (name == "dict") return Value::callable("dict", g_dict);
  if (name == "namespace") return Value::callable("namespace", g_namespace);
  if (name == "joiner") return Value::callable("joiner", g_joiner);
  return std::nullopt;
}

}  // namespace msi::jinja

// Jinja's builtin tests (`x is defined`, `x is divisibleby 3` ...) and their registry.
#include <fmt/format.h>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

using K = Value::Kind;

Result<Value> one_arg(std::string_view test, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind(test, a, {"other"}, 1));
  return b.get(0);
}

Result<bool> t_defined(const Value& v, const CallArgs&) { return !v.is_undefined(); }
Result<bool> t_undefined(const Value& v, const CallArgs&) { return v.is_undefined(); }
Result<bool> t_none(const Value& v, const CallArgs&) { return v.is_none(); }
Result<bool> t_boolean(const Value& v, const CallArgs&) { return v.is_bool(); }
Result<bool> t_false(const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }
Result<bool> t_true(const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }
Result<bool> t_integer(const Value& v, const CallArgs&) { return v.is_int(); }
Result<bool> t_float(const Value& v, const CallArgs&) { return v.is_float(); }
Result<bool> t_number(const Value& v, const CallArgs&) { return v.is_number(); }
Result<bool> t_string(const Value& v, const CallArgs&) { return v.is_string(); }
Result<bool> t_mapping(const Value& v, const CallArgs&) { return v.is_mapping(); }
Result<bool> t_callable(const Value& v, const CallArgs&) {
  return v.is_callable() || v.is_undefined();
}
Result<bool> t_escaped(const Value&, const CallArgs&) { return false; }

Result<bool> t_iterable(const Value& v, const CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_mapping() || v.is_undefined() ||
         v.kind() == K::kIterator;
}

// len() and __getitem__ both work (Undefined has both, as in Jinja).
Result<bool> t_sequence(const Value& v, const CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_mapping() || v.is_undefined();
}

Result<bool> t_lower(const Value& v, const CallArgs&) {
  std::string s = py_str(v);
  return s != py_upper(s) && s == py_lower(s);
}

Result<bool> t_upper(const Value& v, const CallArgs&) {
  std::string s = py_str(v);
  return s != py_lower(s) && s == py_upper(s);
}

Result<bool> remainder_is(const Value& v, const Value& divisor, int64_t want) {
  MSI_ASSIGN_OR_RETURN(Value r, binary_op(BinaryOp::kMod, v, divisor));
  return py_equal(r, Value::integer(want));
}

Result<bool> t_odd(const Value& v, const CallArgs&) {
  return remainder_is(v, Value::integer(2), 1);
}
Result<bool> t_even(const Value& v, const CallArgs&) {
  return remainder_is(v, Value::integer(2), 0);
}

Result<bool> t_divisibleby(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(Value num, one_arg("divisibleby", a));
  return remainder_is(v, num, 0);
}

Result<bool> t_in(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(Value seq, one_arg("in", a));
  return py_contains(seq, v);
}

Result<bool> t_sameas(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(Value other, one_arg("sameas", a));
  if (v.kind() != other.kind()) return false;
  switch (v.kind()) {
    case K::kNone:
    case K::kBool:
    case K::kInt:
    case K::kFloat:
    case K::kString:
    case K::kUndefined: return py_equal(v, other);
    default: return v.identity() == other.identity();
  }
}

Result<bool> t_filter(const Value& v, const CallArgs&) {
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}

Result<bool> t_test(const Value& v, const CallArgs&) {
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

template <CompareOp kOp>
Result<bool> t_compare(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(Value other, one_arg("compare", a));
  return compare(kOp, v, other);
}

struct Entry {
  std::string_view name;
  TestFn fn;
};

constexpr Entry kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"escaped", t_escaped},
    {"lower", t_lower},
    {"upper", t_upper},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"in", t_in},
    {"filter", t_filter},
    {"test", t_test},
    {"==", t_compare<CompareOp::kEq>},
    {"eq", t_compare<CompareOp::kEq>},
    {"equalto", t_compare<CompareOp::kEq>},
    {"!=", t_compare<CompareOp::kNe>},
    {"ne", t_compare<CompareOp::kNe>},
    {">", t_compare<CompareOp::kGt>},
    {"gt", t_compare<CompareOp::kGt>},
    {"greaterthan", t_compare<CompareOp::kGt>},
    {">=", t_compare<CompareOp::kGe>},
    {"ge", t_compare<CompareOp::kGe>},
    {"<", t_compare<CompareOp::kLt>},
    {"lt", t_compare<CompareOp::kLt>},
    {"lessthan", t_compare<CompareOp::kLt>},
    {"<=", t_compare<CompareOp::kLe>},
    {"le", t_compare<CompareOp::kLe>},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const Entry& e : kTests) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

Result<bool> apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  TestFn fn = find_test(name);
  if (fn == nullptr) return error(StatusCode::kInvalidArgument, "No test named '{}'.", name);
  return fn(input, args);
}

}  // namespace msi::jinja

#include "tokenizer/jinja/ops.h"

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "tokenizer/jinja/methods.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

Status type_error(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "** or pow()";
  }
  return "?";
}

Status unsupported(BinaryOp op, const Value& a, const Value& b) {
  return type_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op_symbol(op),
                                type_name(a), type_name(b)));
}

Status overflow() {
  return type_error("integer overflow (Python ints are unbounded; msinfer's are 64-bit)");
}

Result<Value> repeat(const Value& seq, int64_t n) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.kind() == Value::Kind::kTuple ? Value::tuple(std::move(out))
                                           : Value::list(std::move(out));
}

Result<Value> int_op(BinaryOp op, int64_t x, int64_t y) {
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) return overflow();
      return Value::integer(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) return overflow();
      return Value::integer(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) return overflow();
      return Value::integer(r);
    case BinaryOp::kDiv:
      if (y == 0) return type_error("division by zero");
      return Value::number(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::kFloorDiv: {
      if (y == 0) return type_error("integer division or modulo by zero");
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value::integer(q);
    }
    case BinaryOp::kMod: {
      if (y == 0) return type_error("integer modulo by zero");
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::integer(m);
    }
    case BinaryOp::kPow: {
      if (y < 0) return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      int64_t base = x;
      for (int64_t e = y; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) return overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) return overflow();
      }
      return Value::integer(result);
    }
  }
  return overflow();
}

Result<Value> float_op(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd: return Value::number(x + y);
    case BinaryOp::kSub: return Value::number(x - y);
    case BinaryOp::kMul: return Value::number(x * y);
    case BinaryOp::kDiv:
      if (y == 0) return type_error("float division by zero");
      return Value::number(x / y);
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0)
        return type_error(op == BinaryOp::kMod ? "float modulo" : "float floor division by zero");
      // CPython's float_divmod.
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      double floordiv = 0;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return Value::number(op == BinaryOp::kMod ? mod : floordiv);
    }
    case BinaryOp::kPow:
      if (x == 0 && y < 0) return type_error("0.0 cannot be raised to a negative power");
      return Value::number(std::pow(x, y));
  }
  return type_error("bad float op");
}

std::optional<int64_t> as_index(const Value& v) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  return std::nullopt;
}

// Python's PySlice_AdjustIndices + element selection, over any indexable length.
Result<std::vector<size_t>> slice_indices(size_t length, const Value& start_v, const Value& stop_v,
                                          const Value& step_v, bool* ok) {
  *ok = false;
  int64_t step = 1;
  if (!step_v.is_none()) {
    auto s = as_index(step_v);
    if (!s) return std::vector<size_t>{};
    step = *s;
  }
  if (step == 0) return type_error("slice step cannot be zero");
  int64_t len = static_cast<int64_t>(length);
  auto adjust = [&](const Value& v, int64_t dflt, int64_t* out) {
    if (v.is_none()) {
      *out = dflt;
      return true;
    }
    auto i = as_index(v);
    if (!i) return false;
    int64_t x = *i;
    if (x < 0) {
      x += len;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    *out = x;
    return true;
  };
  int64_t start = 0;
  int64_t stop = 0;
  if (!adjust(start_v, step < 0 ? len - 1 : 0, &start)) return std::vector<size_t>{};
  if (!adjust(stop_v, step < 0 ? -1 : len, &stop)) return std::vector<size_t>{};
  std::vector<size_t> idx;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) idx.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = start; i > stop; i += step) idx.push_back(static_cast<size_t>(i));
  }
  *ok = true;
  return idx;
}

std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  if (obj.kind() == Value::Kind::kNamespace) return "jinja2.utils.Namespace object";
  return fmt::format("{} object", type_name(obj));
}

Value missing_attribute(const Value& obj, std::string_view name) {
  return Value::undefined(fmt::format("{} has no attribute {}",
                                      py_repr_string(object_type_repr(obj)), py_repr_string(name)));
}

std::optional<Value> lookup_attr_only(const Value& obj, std::string_view name) {
  if (obj.kind() == Value::Kind::kNamespace) {
    const Value* v = obj.dict().find(name);
    if (v != nullptr) return *v;
    return std::nullopt;
  }
  if (name.size() > 4 && name.substr(0, 2) == "__" && name.substr(name.size() - 2) == "__") {
    return Value::undefined(fmt::format("access to attribute {} of {} object is unsafe.",
                                        py_repr_string(name), py_repr_string(type_name(obj))));
  }
  return find_method(obj, name);
}

std::optional<Value> lookup_item_only(const Value& obj, const Value& key) {
  using K = Value::Kind;
  switch (obj.kind()) {
    case K::kList:
    case K::kTuple: {
      auto i = as_index(key);
      if (!i) return std::nullopt;
      int64_t n = static_cast<int64_t>(obj.items().size());
      int64_t j = *i < 0 ? *i + n : *i;
      if (j < 0 || j >= n) return std::nullopt;
      return obj.items()[static_cast<size_t>(j)];
    }
    case K::kString: {
      auto i = as_index(key);
      if (!i) return std::nullopt;
      std::u32string cps = decode_utf8(obj.as_string());
      int64_t n = static_cast<int64_t>(cps.size());
      int64_t j = *i < 0 ? *i + n : *i;
      if (j < 0 || j >= n) return std::nullopt;
      std::string out;
      append_utf8(out, cps[static_cast<size_t>(j)]);
      return Value::string(std::move(out));
    }
    case K::kDict: {
      const Value* v = obj.dict().find(key);
      if (v != nullptr) return *v;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

}  // namespace

Status undefined_error(const Value& v) {
  return Status(StatusCode::kInvalidArgument, v.undefined_hint());
}

Result<Value> binary_op(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kMod && a.is_string()) {  // str % anything formats (str.__mod__ runs first)
    MSI_ASSIGN_OR_RETURN(std::string s, py_percent_format(a.as_string(), b));
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return float_op(op, a.as_double(), b.as_double());
    return int_op(op, a.as_int(), b.as_int());
  }
  using K = Value::Kind;
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) return Value::string(a.as_string() + b.as_string());
    if ((a.kind() == K::kList || a.kind() == K::kTuple) && a.kind() == b.kind()) {
      ValueList out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.kind() == K::kList ? Value::list(std::move(out)) : Value::tuple(std::move(out));
    }
    if (a.is_string() || a.kind() == K::kList || a.kind() == K::kTuple) {
      return type_error(fmt::format("can only concatenate {} (not \"{}\") to {}", type_name(a),
                                    type_name(b), type_name(a)));
    }
  }
  if (op == BinaryOp::kMul) {
    bool a_seq = a.is_string() || a.is_sequence();
    bool b_seq = b.is_string() || b.is_sequence();
    if (a_seq && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if (b_seq && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
    if (a_seq && b.is_float()) {
      return type_error(fmt::format("can't multiply sequence by non-int of type 'float'"));
    }
  }
  return unsupported(op, a, b);
}

Result<Value> negate(const Value& v) {
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_float()) return Value::number(-v.as_double());
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) return overflow();
    return Value::integer(-v.as_int());
  }
  return type_error(fmt::format("bad operand type for unary -: '{}'", type_name(v)));
}

Result<Value> unary_plus(const Value& v) {
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  return type_error(fmt::format("bad operand type for unary +: '{}'", type_name(v)));
}

namespace {

// Three-way ordering; NaN compares unordered (all ordering tests false).
Result<int> order(const Value& a, const Value& b, const char* symbol) {
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double();
      double y = b.as_double();
      if (std::isnan(x) || std::isnan(y)) return 2;
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_sequence() && a.kind() == b.kind()) {
    const ValueList& x = a.items();
    const ValueList& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!py_equal(x[i], y[i])) return order(x[i], y[i], symbol);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return type_error(fmt::format("'{}' not supported between instances of '{}' and '{}'", symbol,
                                type_name(a), type_name(b)));
}

}  // namespace

Result<bool> py_less(const Value& a, const Value& b) {
  MSI_ASSIGN_OR_RETURN(int c, order(a, b, "<"));
  return c == -1;
}

Result<bool> compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq: return py_equal(a, b);
    case CompareOp::kNe: return !py_equal(a, b);
    case CompareOp::kIn: return py_contains(b, a);
    case CompareOp::kNotIn: {
      MSI_ASSIGN_OR_RETURN(bool in, py_contains(b, a));
      return !in;
    }
    case CompareOp::kLt: {
      MSI_ASSIGN_OR_RETURN(int c, order(a, b, "<"));
      return c == -1;
    }
    case CompareOp::kLe: {
      MSI_ASSIGN_OR_RETURN(int c, order(a, b, "<="));
      return c == -1 || c == 0;
    }
    case CompareOp::kGt: {
      MSI_ASSIGN_OR_RETURN(int c, order(a, b, ">"));
      return c == 1;
    }
    case CompareOp::kGe: {
      MSI_ASSIGN_OR_RETURN(int c, order(a, b, ">="));
      return c == 1 || c == 0;
    }
  }
  return false;
}

Result<bool> py_contains(const Value& container, const Value& item) {
  using K = Value::Kind;
  switch (container.kind()) {
    case K::kUndefined: return false;  // Undefined iterates as empty
    case K::kString:
      if (!item.is_string()) {
        if (item.is_undefined()) return undefined_error(item);
        return type_error(
            fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case K::kList:
    case K::kTuple:
      for (const Value& v : container.items()) {
        if (py_equal(v, item)) return true;
      }
      return false;
    case K::kDict:
      if (item.kind() == K::kList || item.kind() == K::kDict || item.kind() == K::kNamespace) {
        return type_error(fmt::format("unhashable type: '{}'", type_name(item)));
      }
      return container.dict().find(item) != nullptr;
    case K::kIterator: {
      IteratorState& it = container.iterator_state();
      while (it.pos < it.items.size()) {
        if (py_equal(it.items[it.pos++], item)) return true;
      }
      return false;
    }
    default:
      return type_error(fmt::format("argument of type '{}' is not iterable", type_name(container)));
  }
}

Result<int64_t> py_len(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: return 0;
    case K::kString: return static_cast<int64_t>(n_code_points(v.as_string()));
    case K::kList:
    case K::kTuple: return static_cast<int64_t>(v.items().size());
    case K::kDict: return static_cast<int64_t>(v.dict().size());
    default: return type_error(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

Result<ValueList> iterate(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: return ValueList{};
    case K::kList:
    case K::kTuple: return v.items();
    case K::kDict: {
      ValueList keys;
      for (const auto& [k, _] : v.dict().entries()) keys.push_back(k);
      return keys;
    }
    case K::kString: {
      ValueList chars;
      for (char32_t c : decode_utf8(v.as_string())) {
        std::string s;
        append_utf8(s, c);
        chars.push_back(Value::string(std::move(s)));
      }
      return chars;
    }
    case K::kIterator: {
      IteratorState& it = v.iterator_state();
      ValueList rest(it.items.begin() + static_cast<std::ptrdiff_t>(it.pos), it.items.end());
      it.pos = it.items.size();
      return rest;
    }
    default: return type_error(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

Result<Value> get_attr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (auto v = lookup_attr_only(obj, name)) return *v;
  if (auto v = lookup_item_only(obj, Value::string(std::string(name)))) return *v;
  return missing_attribute(obj, name);
}

Result<Value> get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (auto v = lookup_item_only(obj, key)) return *v;
  if (key.is_string()) {
    if (auto v = lookup_attr_only(obj, key.as_string())) return *v;
    return missing_attribute(obj, key.as_string());
  }
  return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), py_repr(key)));
}

// NOTE: Jinja compiles slices to plain Python subscription (no sandbox getitem), so a bad
// slice raises instead of giving an Undefined.
Result<Value> get_slice(const Value& obj, const Value& start, const Value& stop,
                        const Value& step) {
  if (obj.is_undefined()) return undefined_error(obj);
  bool ok = false;
  auto bad_indices = [] {
    return type_error("slice indices must be integers or None or have an __index__ method");
  };
  if (obj.is_sequence()) {
    MSI_ASSIGN_OR_RETURN(auto idx, slice_indices(obj.items().size(), start, stop, step, &ok));
    if (!ok) return bad_indices();
    ValueList out;
    for (size_t i : idx) out.push_back(obj.items()[i]);
    return obj.kind() == Value::Kind::kTuple ? Value::tuple(std::move(out))
                                             : Value::list(std::move(out));
  }
  if (obj.is_string()) {
    std::u32string cps = decode_utf8(obj.as_string());
    MSI_ASSIGN_OR_RETURN(auto idx, slice_indices(cps.size(), start, stop, step, &ok));
    if (!ok) return bad_indices();
    std::string out;
    for (size_t i : idx) append_utf8(out, cps[i]);
    return Value::string(std::move(out));
  }
  if (obj.is_mapping()) return type_error("unhashable type: 'slice'");
  return type_error(fmt::format("'{}' object is not subscriptable", type_name(obj)));
}

}  // namespace msi::jinja

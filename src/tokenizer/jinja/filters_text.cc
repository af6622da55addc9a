// String and number filters: trim, upper, lower, title, capitalize, replace, indent, center,
// truncate, wordcount, format, escape, safe, string, int, float, abs, round, tojson.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

Status filter_error(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }

Result<Value> f_trim(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("trim", a, {"chars"}));
  MSI_ASSIGN_OR_RETURN(auto chars, arg_optional_string("trim", b.get_or_none(0)));
  return Value::string(py_strip(py_str(v), chars, true, true));
}

Result<Value> f_upper(const Value& v, const CallArgs&) {
  return Value::string(py_upper(py_str(v)));
}
Result<Value> f_lower(const Value& v, const CallArgs&) {
  return Value::string(py_lower(py_str(v)));
}
Result<Value> f_capitalize(const Value& v, const CallArgs&) {
  return Value::string(py_capitalize(py_str(v)));
}
Result<Value> f_string(const Value& v, const CallArgs&) { return Value::string(py_str(v)); }
Result<Value> f_safe(const Value& v, const CallArgs&) { return Value::string(py_str(v)); }

// Jinja's title: split before runs of whitespace, '-', '(', '{', '[', '<'; upper-case each
// piece's first character and lower-case the rest.
Result<Value> f_title(const Value& v, const CallArgs&) {
  std::u32string cps = decode_utf8(py_str(v));
  auto is_sep = [](char32_t c) {
    return py_is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    std::string first = encode_utf8(std::u32string_view(cps).substr(i, 1));
    out +=
        py_upper(first) + py_lower(encode_utf8(std::u32string_view(cps).substr(i + 1, j - i - 1)));
    i = j;
  }
  return Value::string(std::move(out));
}

Result<Value> f_replace(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("replace", a, {"old", "new", "count"}, 2));
  int64_t count = -1;
  if (b.has(2) && !b.get(2).is_none()) {
    MSI_ASSIGN_OR_RETURN(count, arg_int("replace", b.get(2)));
  }
  return Value::string(py_replace(py_str(v), py_str(b.get(0)), py_str(b.get(1)), count));
}

Result<Value> f_indent(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("indent", a, {"width", "first", "blank"}));
  Value width = b.get_or(0, Value::integer(4));
  std::string indention;
  if (width.is_string()) {
    indention = width.as_string();
  } else {
    MSI_ASSIGN_OR_RETURN(int64_t n, arg_int("indent", width));
    indention = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
  }
  if (!v.is_string()) {  // Jinja appends "\n" to the value itself
    if (v.is_undefined()) return undefined_error(v);
    return filter_error(
        fmt::format("unsupported operand type(s) for +=: '{}' and 'str'", type_name(v)));
  }
  std::string s = v.as_string() + "\n";
  std::vector<std::string> lines = py_splitlines(s, false);
  std::string rv;
  bool blank = b.get_or(2, Value::boolean(false)).truthy();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      rv += '\n';
      if (blank || !lines[i].empty()) rv += indention;
    }
    rv += lines[i];
  }
  if (b.get_or(1, Value::boolean(false)).truthy()) rv = indention + rv;
  return Value::string(std::move(rv));
}

Result<Value> f_center(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("center", a, {"width"}));
  CallArgs m;
  m.args.push_back(b.get_or(0, Value::integer(80)));
  MSI_ASSIGN_OR_RETURN(Value method, get_attr(Value::string(py_str(v)), "center"));
  return method.function()(m);
}

Result<Value> f_truncate(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b,
                       BoundArgs::bind("truncate", a, {"length", "killwords", "end", "leeway"}));
  MSI_ASSIGN_OR_RETURN(int64_t length, arg_int("truncate", b.get_or(0, Value::integer(255))));
  MSI_ASSIGN_OR_RETURN(std::string end, arg_string("truncate", b.get_or(2, Value::string("..."))));
  MSI_ASSIGN_OR_RETURN(int64_t leeway, arg_int("truncate", b.get_or(3, Value::integer(5))));
  std::u32string s = decode_utf8(py_str(v));
  int64_t n_end = static_cast<int64_t>(n_code_points(end));
  if (length < n_end)
    return filter_error(fmt::format("expected length >= {}, got {}", n_end, length));
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value::string(encode_utf8(s));
  std::string head = encode_utf8(s.substr(0, static_cast<size_t>(length - n_end)));
  if (b.get_or(1, Value::boolean(false)).truthy()) return Value::string(head + end);
  return Value::string(py_rsplit(head, std::string(" "), 1)[0] + end);
}

Result<Value> f_wordcount(const Value& v, const CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : decode_utf8(py_str(v))) {
    bool w = py_is_alnum(c) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

Result<Value> f_format(const Value& v, const CallArgs& a) {
  if (!a.args.empty() && !a.kwargs.empty()) {
    return filter_error("can't handle positional and keyword arguments at the same time");
  }
  Value args = Value::tuple(a.args);
  if (!a.kwargs.empty()) {
    args = Value::new_dict();
    for (const auto& [k, x] : a.kwargs) args.dict().set(k, x);
  }
  MSI_ASSIGN_OR_RETURN(std::string s, py_percent_format(py_str(v), args));
  return Value::string(std::move(s));
}

Result<Value> f_escape(const Value& v, const CallArgs&) {
  std::string out;
  for (char c : py_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value::string(std::move(out));
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = py_strip(text, std::nullopt, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' &&
        std::isalnum(static_cast<unsigned char>(s[i + 1])))
      continue;
    digits += s[i];
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (*end != '\0' || errno == ERANGE || std::isspace(static_cast<unsigned char>(digits[0])))
    return std::nullopt;
  return v;
}

// Python float(str).
std::optional<double> parse_float(const std::string& text) {
  std::string s = py_strip(text, std::nullopt, true, true);
  std::erase(s, '_');
  if (s.empty()) return std::nullopt;
  std::string lower = py_lower(s);
  std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double x = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -x : x;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return v;
}

Result<Value> f_int(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("int", a, {"default", "base"}));
  Value dflt = b.get_or(0, Value::integer(0));
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    double x = v.as_double();
    if (std::isnan(x)) return dflt;
    if (std::isinf(x) || std::fabs(x) >= 9.2e18)
      return filter_error("cannot convert float to integer");
    return Value::integer(static_cast<int64_t>(x));
  }
  if (v.is_string()) {
    MSI_ASSIGN_OR_RETURN(int64_t base, arg_int("int", b.get_or(1, Value::integer(10))));
    if (auto i = parse_int(v.as_string(), static_cast<int>(base))) return Value::integer(*i);
    if (auto f = parse_float(v.as_string()); f && std::isfinite(*f))
      return Value::integer(static_cast<int64_t>(*f));
  }
  return dflt;
}

Result<Value> f_float(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("float", a, {"default"}));
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    if (auto f = parse_float(v.as_string())) return Value::number(*f);
  }
  return b.get_or(0, Value::number(0.0));
}

Result<Value> f_abs(const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    int64_t i = v.as_int();
    return i < 0 ? negate(Value::integer(i)) : Value::integer(i);
  }
  return filter_error(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
}

// Python's round(x, ndigits): correctly rounded, ties to even (glibc printf rounds the exact
// binary value the same way).
double py_round(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(ndigits, 300)), x);
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / p) * p;
}

Result<Value> f_round(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("round", a, {"precision", "method"}));
  MSI_ASSIGN_OR_RETURN(int64_t precision, arg_int("round", b.get_or(0, Value::integer(0))));
  MSI_ASSIGN_OR_RETURN(std::string method,
                       arg_string("round", b.get_or(1, Value::string("common"))));
  if (method != "common" && method != "ceil" && method != "floor") {
    return filter_error("method must be common, ceil or floor");
  }
  if (!v.is_number()) {
    if (v.is_undefined()) return undefined_error(v);
    return filter_error(fmt::format("type {} doesn't define __round__ method", type_name(v)));
  }
  if (method == "common") {
    if (!v.is_float()) return Value::integer(v.as_int());
    return Value::number(py_round(v.as_double(), precision));
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * p;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Result<Value> f_tojson(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(
      BoundArgs b,
      BoundArgs::bind("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions o;
  o.ensure_ascii = b.get_or(0, Value::boolean(false)).truthy();
  Value indent = b.get_or_none(1);
  if (indent.is_string()) {
    o.indent = indent.as_string();
  } else if (!indent.is_none()) {
    MSI_ASSIGN_OR_RETURN(int64_t n, arg_int("tojson", indent));
    o.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
  }
  if (o.indent) o.item_separator = ",";
  Value seps = b.get_or_none(2);
  if (!seps.is_none()) {
    MSI_ASSIGN_OR_RETURN(ValueList parts, iterate(seps));
    if (parts.size() != 2) return filter_error("separators must be an (item, key) pair");
    MSI_ASSIGN_OR_RETURN(o.item_separator, arg_string("tojson", parts[0]));
    MSI_ASSIGN_OR_RETURN(o.key_separator, arg_string("tojson", parts[1]));
  }
  o.sort_keys = b.get_or(3, Value::boolean(false)).truthy();
  MSI_ASSIGN_OR_RETURN(std::string s, py_json_dumps(v, o));
  return Value::string(std::move(s));
}

struct Entry {
  std::string_view name;
  FilterFn fn;
};

constexpr Entry kFilters[] = {
    {"abs", f_abs},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"e", f_escape},
    {"escape", f_escape},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"lower", f_lower},
    {"replace", f_replace},
    {"round", f_round},
    {"safe", f_safe},
    {"string", f_string},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

}  // namespace

FilterFn find_text_filter(std::string_view name) {
  for (const Entry& e : kFilters) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

}  // namespace msi::jinja

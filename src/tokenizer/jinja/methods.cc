#include "tokenizer/jinja/methods.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <utf8proc.h>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

Status value_error(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }

template <size_t N>
bool one_of(std::string_view name, const std::array<std::string_view, N>& names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

constexpr std::array<std::string_view, 47> kStrMethods = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
constexpr std::array<std::string_view, 11> kListMethods = {"append", "clear",   "copy",   "count",
                                                           "extend", "index",   "insert", "pop",
                                                           "remove", "reverse", "sort"};
constexpr std::array<std::string_view, 6> kListUnsafe = {"append", "extend",  "insert",
                                                         "remove", "reverse", "sort"};
constexpr std::array<std::string_view, 11> kDictMethods = {
    "clear", "copy",    "fromkeys",   "get",    "items", "keys",
    "pop",   "popitem", "setdefault", "update", "values"};
constexpr std::array<std::string_view, 5> kDictUnsafe = {"clear", "pop", "popitem", "setdefault",
                                                         "update"};

// All code points satisfy `pred` and there is at least one.
template <typename Pred>
Value all_chars(const std::string& s, Pred pred) {
  std::u32string cps = decode_utf8(s);
  return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
}

bool has_category(char32_t c, std::initializer_list<utf8proc_category_t> cats) {
  if (c > 0x10FFFF) return false;
  utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return std::find(cats.begin(), cats.end(), cat) != cats.end();
}

// str.isupper / str.islower: some cased character, and none of the other case.
Value case_test(const std::string& s, bool upper) {
  bool cased = false;
  for (char32_t c : decode_utf8(s)) {
    bool is_u = py_to_lower(c) != c;
    bool is_l = py_to_upper(c) != c;
    if (upper ? is_l : is_u) return Value::boolean(false);
    cased = cased || (upper ? is_u : is_l);
  }
  return Value::boolean(cased);
}

Result<Value> affix_test(const std::string& self, const BoundArgs& b, bool prefix) {
  std::string s = self;
  if (b.has(1) || b.has(2)) {
    MSI_ASSIGN_OR_RETURN(Value sliced, get_slice(Value::string(self), b.get_or_none(1),
                                                 b.get_or_none(2), Value::none()));
    s = sliced.as_string();
  }
  auto check = [&](const Value& v) -> Result<bool> {
    MSI_ASSIGN_OR_RETURN(std::string a, arg_string(prefix ? "startswith" : "endswith", v));
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0
                  : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  const Value& what = b.get(0);
  if (what.kind() == Value::Kind::kTuple) {
    for (const Value& v : what.items()) {
      MSI_ASSIGN_OR_RETURN(bool hit, check(v));
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  MSI_ASSIGN_OR_RETURN(bool hit, check(what));
  return Value::boolean(hit);
}

Value string_list(const std::vector<std::string>& parts) {
  ValueList out;
  for (const auto& p : parts) out.push_back(Value::string(p));
  return Value::list(std::move(out));
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, int where) {
  int64_t len = static_cast<int64_t>(n_code_points(s));
  if (width <= len) return s;
  int64_t marg = width - len;
  int64_t left = where < 0 ? 0 : (where > 0 ? marg : marg / 2 + (marg & width & 1));
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

// str.format with automatic/explicit positional fields, keyword fields and !r/!s; format
// specs are not supported.
Result<Value> str_format(const std::string& fmt_str, const CallArgs& call) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_str.size(); ++i) {
    char c = fmt_str[i];
    if (c == '}') {
      if (i + 1 < fmt_str.size() && fmt_str[i + 1] == '}')
        ++i;
      else
        return value_error("Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt_str.size() && fmt_str[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt_str.find('}', i);
    if (close == std::string::npos) return value_error("Single '{' encountered in format string");
    std::string field = fmt_str.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 's';
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = bang + 1 < field.size() ? field[bang + 1] : 's';
      field.resize(bang);
    }
    if (field.find(':') != std::string::npos)
      return value_error("str.format specs are not supported");
    const Value* arg = nullptr;
    if (field.empty()) field = std::to_string(auto_index++);
    if (std::all_of(field.begin(), field.end(), ::isdigit)) {
      size_t k = std::stoul(field);
      if (k >= call.args.size()) return value_error("Replacement index " + field + " out of range");
      arg = &call.args[k];
    } else {
      for (const auto& [name, v] : call.kwargs) {
        if (name == field) arg = &v;
      }
      if (arg == nullptr) return value_error(py_repr_string(field));
    }
    out += conversion == 'r' ? py_repr(*arg) : py_str(*arg);
  }
  return Value::string(std::move(out));
}

Result<Value> call_str_method(const std::string& s, std::string_view name, const CallArgs& call) {
  auto bind = [&](std::initializer_list<std::string_view> params, size_t n_required = 0) {
    return BoundArgs::bind(name, call, params, n_required);
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"chars"}));
    MSI_ASSIGN_OR_RETURN(auto chars, arg_optional_string(name, b.get_or_none(0)));
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"sep", "maxsplit"}));
    MSI_ASSIGN_OR_RETURN(auto sep, arg_optional_string(name, b.get_or_none(0)));
    MSI_ASSIGN_OR_RETURN(int64_t maxsplit, arg_int(name, b.get_or(1, Value::integer(-1))));
    if (sep && sep->empty()) return value_error("empty separator");
    return string_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"keepends"}));
    return string_list(py_splitlines(s, b.get_or(0, Value::boolean(false)).truthy()));
  }
  if (name == "startswith" || name == "endswith") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"prefix", "start", "end"}, 1));
    return affix_test(s, b, name == "startswith");
  }
  if (name == "replace") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"old", "new", "count"}, 2));
    MSI_ASSIGN_OR_RETURN(std::string old_s, arg_string(name, b.get(0)));
    MSI_ASSIGN_OR_RETURN(std::string new_s, arg_string(name, b.get(1)));
    MSI_ASSIGN_OR_RETURN(int64_t count, arg_int(name, b.get_or(2, Value::integer(-1))));
    return Value::string(py_replace(s, old_s, new_s, count));
  }
  if (name == "upper") return Value::string(py_upper(s));
  if (name == "lower" || name == "casefold") return Value::string(py_lower(s));
  if (name == "title") return Value::string(py_str_title(s));
  if (name == "capitalize") return Value::string(py_capitalize(s));
  if (name == "swapcase") return Value::string(py_swapcase(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"sub", "start", "end"}, 1));
    MSI_ASSIGN_OR_RETURN(std::string sub, arg_string(name, b.get(0)));
    std::string hay = s;
    int64_t offset = 0;
    if (b.has(1) || b.has(2)) {
      MSI_ASSIGN_OR_RETURN(Value sliced, get_slice(Value::string(s), b.get_or_none(1),
                                                   b.get_or_none(2), Value::none()));
      hay = sliced.as_string();
      if (b.has(1) && !b.get(1).is_none()) {
        MSI_ASSIGN_OR_RETURN(int64_t start, arg_int(name, b.get(1)));
        int64_t len = static_cast<int64_t>(n_code_points(s));
        offset = start < 0 ? std::max<int64_t>(0, start + len) : std::min(start, len);
      }
    }
    if (name == "count") return Value::integer(py_count(hay, sub));
    int64_t pos = py_find(hay, sub, name[0] == 'r');
    if (pos < 0 && (name == "index" || name == "rindex")) return value_error("substring not found");
    return Value::integer(pos < 0 ? -1 : pos + offset);
  }
  if (name == "join") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"iterable"}, 1));
    MSI_ASSIGN_OR_RETURN(ValueList items, iterate(b.get(0)));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return value_error(fmt::format("sequence item {}: expected str instance, {} found", i,
                                       type_name(items[i])));
      }
      if (i > 0) out += s;
      out += items[i].as_string();
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return str_format(s, call);
  if (name == "center" || name == "ljust" || name == "rjust") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"width", "fillchar"}, 1));
    MSI_ASSIGN_OR_RETURN(int64_t width, arg_int(name, b.get(0)));
    MSI_ASSIGN_OR_RETURN(std::string fill, arg_string(name, b.get_or(1, Value::string(" "))));
    return Value::string(pad(s, width, fill, name == "center" ? 0 : (name == "ljust" ? -1 : 1)));
  }
  if (name == "zfill") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"width"}, 1));
    MSI_ASSIGN_OR_RETURN(int64_t width, arg_int(name, b.get(0)));
    bool sign = !s.empty() && (s[0] == '+' || s[0] == '-');
    std::string padded = pad(sign ? s.substr(1) : s, width - (sign ? 1 : 0), "0", 1);
    return Value::string(sign ? s.substr(0, 1) + padded : padded);
  }
  if (name == "partition" || name == "rpartition") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"sep"}, 1));
    MSI_ASSIGN_OR_RETURN(std::string sep, arg_string(name, b.get(0)));
    if (sep.empty()) return value_error("empty separator");
    size_t pos = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (pos == std::string::npos) {
      return name == "partition"
                 ? Value::tuple({Value::string(s), Value::string(""), Value::string("")})
                 : Value::tuple({Value::string(""), Value::string(""), Value::string(s)});
    }
    return Value::tuple({Value::string(s.substr(0, pos)), Value::string(sep),
                         Value::string(s.substr(pos + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"affix"}, 1));
    MSI_ASSIGN_OR_RETURN(std::string a, arg_string(name, b.get(0)));
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0)
      return Value::string(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && s.size() >= a.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value::string(s.substr(0, s.size() - a.size()));
    }
    return Value::string(s);
  }
  if (name == "isspace") return all_chars(s, py_is_space);
  if (name == "isalnum") return all_chars(s, py_is_alnum);
  if (name == "isascii")
    return Value::boolean(std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; }));
  if (name == "isprintable") {
    std::u32string cps = decode_utf8(s);
    return Value::boolean(std::all_of(cps.begin(), cps.end(), py_is_printable));
  }
  if (name == "isalpha") {
    return all_chars(s, [](char32_t c) {
      return has_category(c, {UTF8PROC_CATEGORY_LU, UTF8PROC_CATEGORY_LL, UTF8PROC_CATEGORY_LT,
                              UTF8PROC_CATEGORY_LM, UTF8PROC_CATEGORY_LO});
    });
  }
  if (name == "isdigit" || name == "isdecimal") {
    return all_chars(s, [](char32_t c) { return has_category(c, {UTF8PROC_CATEGORY_ND}); });
  }
  if (name == "isnumeric") {
    return all_chars(s, [](char32_t c) {
      return has_category(c, {UTF8PROC_CATEGORY_ND, UTF8PROC_CATEGORY_NL, UTF8PROC_CATEGORY_NO});
    });
  }
  if (name == "isupper") return case_test(s, true);
  if (name == "islower") return case_test(s, false);
  return value_error(fmt::format("str.{}() is not supported by msinfer's template engine", name));
}

Result<Value> call_list_method(const Value& self, std::string_view name, const CallArgs& call) {
  auto bind = [&](std::initializer_list<std::string_view> params, size_t n_required = 0) {
    return BoundArgs::bind(name, call, params, n_required);
  };
  const ValueList& items = self.items();
  if (name == "count") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"value"}, 1));
    return Value::integer(std::count_if(items.begin(), items.end(),
                                        [&](const Value& v) { return py_equal(v, b.get(0)); }));
  }
  if (name == "index") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"value"}, 1));
    for (size_t i = 0; i < items.size(); ++i) {
      if (py_equal(items[i], b.get(0))) return Value::integer(static_cast<int64_t>(i));
    }
    return value_error(fmt::format("{} is not in list", py_repr(b.get(0))));
  }
  if (name == "copy") return Value::list(items);
  if (name == "clear") {
    self.mutable_items().clear();
    return Value::none();
  }
  if (name == "pop") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, bind({"index"}));
    MSI_ASSIGN_OR_RETURN(int64_t i, arg_int(name, b.get_or(0, Value::integer(-1))));
    ValueList& v = self.mutable_items();
    if (v.empty()) return value_error("pop from empty list");
    int64_t n = static_cast<int64_t>(v.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return value_error("pop index out of range");
    Value out = v[static_cast<size_t>(i)];
    v.erase(v.begin() + i);
    return out;
  }
  return value_error(fmt::format("list.{}() is not supported", name));
}

Result<Value> call_dict_method(const Value& self, std::string_view name, const CallArgs& call) {
  const Dict& d = self.dict();
  if (name == "get") {
    MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind(name, call, {"key", "default"}, 1));
    const Value* v = d.find(b.get(0));
    return v != nullptr ? *v : b.get_or_none(1);
  }
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind(name, call, {}));
  ValueList out;
  if (name == "items") {
    for (const auto& [k, v] : d.entries()) out.push_back(Value::tuple({k, v}));
  } else if (name == "keys") {
    for (const auto& [k, v] : d.entries()) out.push_back(k);
  } else if (name == "values") {
    for (const auto& [k, v] : d.entries()) out.push_back(v);
  } else if (name == "copy") {
    return Value::from_dict(std::make_shared<Dict>(d));
  } else {
    return value_error(fmt::format("dict.{}() is not supported", name));
  }
  return Value::list(std::move(out));
}

Value unsafe(const Value& self, std::string_view name) {
  return Value::undefined(fmt::format("access to attribute {} of {} object is unsafe.",
                                      py_repr_string(name), py_repr_string(type_name(self))));
}

}  // namespace

std::optional<Value> find_method(const Value& self, std::string_view name) {
  std::string method_name = fmt::format("{}.{}", type_name(self), name);
  switch (self.kind()) {
    case Value::Kind::kString:
      if (!one_of(name, kStrMethods)) return std::nullopt;
      return Value::callable(method_name,
                             [s = self.as_string(), n = std::string(name)](const CallArgs& a) {
                               return call_str_method(s, n, a);
                             });
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      if (!one_of(name, kListMethods)) return std::nullopt;
      if (self.kind() == Value::Kind::kTuple && name != "count" && name != "index")
        return std::nullopt;
      if (one_of(name, kListUnsafe)) return unsafe(self, name);
      return Value::callable(method_name, [self, n = std::string(name)](const CallArgs& a) {
        return call_list_method(self, n, a);
      });
    case Value::Kind::kDict:
      if (!one_of(name, kDictMethods)) return std::nullopt;
      if (one_of(name, kDictUnsafe)) return unsafe(self, name);
      return Value::callable(method_name, [self, n = std::string(name)](const CallArgs& a) {
        return call_dict_method(self, n, a);
      });
    default: return std::nullopt;
  }
}

}  // namespace msi::jinja

#include "tokenizer/jinja/py_format.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

std::string py_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, as CPython's repr (David Gay's dtoa, mode 0).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-1.2345e+02"
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exponent = std::stoi(sci.substr(e + 1));
  int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  int n_digits = static_cast<int>(digits.size());
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (n_digits > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (decpt >= n_digits) {
    out += digits + std::string(static_cast<size_t>(decpt - n_digits), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(decpt)) + "." +
           digits.substr(static_cast<size_t>(decpt));
  }
  return out;
}

namespace {

void append_repr(std::string& out, const Value& v);

void append_items(std::string& out, const ValueList& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr(out, items[i]);
  }
}

void append_dict(std::string& out, const Dict& d) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : d.entries()) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, k);
    out += ": ";
    append_repr(out, v);
  }
  out += '}';
}

void append_repr(std::string& out, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: out += "Undefined"; return;
    case K::kString: out += py_repr_string(v.as_string()); return;
    case K::kList:
      out += '[';
      append_items(out, v.items());
      out += ']';
      return;
    case K::kTuple:
      out += '(';
      append_items(out, v.items());
      if (v.items().size() == 1) out += ',';
      out += ')';
      return;
    case K::kDict: append_dict(out, v.dict()); return;
    case K::kNamespace:
      out += "<Namespace ";
      append_dict(out, v.dict());
      out += '>';
      return;
    case K::kIterator: out += fmt::format("<{} object>", v.iterator_state().type_name); return;
    case K::kCallable: out += fmt::format("<function {}>", v.callable_name()); return;
    default: out += py_str(v);
  }
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : decode_utf8(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7f)) {
          if (c >= 0x10000) {
            char32_t v = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
          } else {
            out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
          }
        } else {
          append_utf8(out, c);
        }
    }
  }
  out += '"';
}

std::string json_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  return py_float_repr(x);
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonDumpOptions& options) : o_(options) {}

  Status write(const Value& v, int depth) {
    using K = Value::Kind;
    switch (v.kind()) {
      case K::kNone: out_ += "null"; return Status::ok();
      case K::kBool: out_ += v.as_bool() ? "true" : "false"; return Status::ok();
      case K::kInt: out_ += std::to_string(v.as_int()); return Status::ok();
      case K::kFloat: out_ += json_float(v.as_double()); return Status::ok();
      case K::kString:
        append_json_string(out_, v.as_string(), o_.ensure_ascii);
        return Status::ok();
      case K::kList:
      case K::kTuple: return write_list(v.items(), depth);
      case K::kDict: return write_dict(v.dict(), depth);
      default:
        return error(StatusCode::kInvalidArgument, "Object of type {} is not JSON serializable",
                     type_name(v));
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void newline(int depth) {
    if (!o_.indent) return;
    out_ += '\n';
    for (int i = 0; i < depth; ++i) out_ += *o_.indent;
  }

  Status write_list(const ValueList& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return Status::ok();
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += o_.item_separator;
      newline(depth + 1);
      MSI_RETURN_IF_ERROR(write(items[i], depth + 1));
    }
    newline(depth);
    out_ += ']';
    return Status::ok();
  }

  Status write_dict(const Dict& d, int depth) {
    if (d.size() == 0) {
      out_ += "{}";
      return Status::ok();
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : d.entries()) entries.push_back(&e);
    if (o_.sort_keys) {
      Status st;
      std::stable_sort(entries.begin(), entries.end(), [&](auto* a, auto* b) {
        if (!st.is_ok()) return false;
        Result<bool> less = py_less(a->first, b->first);
        if (!less.is_ok()) {
          st = less.status();
          return false;
        }
        return *less;
      });
      MSI_RETURN_IF_ERROR(st);
    }
    out_ += '{';
    bool first = true;
    for (const auto* e : entries) {
      if (!first) out_ += o_.item_separator;
      first = false;
      newline(depth + 1);
      const Value& k = e->first;
      if (k.is_string()) {
        append_json_string(out_, k.as_string(), o_.ensure_ascii);
      } else if (k.is_bool() || k.is_int() || k.is_float() || k.is_none()) {
        std::string key = k.is_none()   ? "null"
                          : k.is_bool() ? (k.as_bool() ? "true" : "false")
                          : k.is_int()  ? std::to_string(k.as_int())
                                        : json_float(k.as_double());
        append_json_string(out_, key, o_.ensure_ascii);
      } else {
        return error(StatusCode::kInvalidArgument,
                     "keys must be str, int, float, bool or None, not {}", type_name(k));
      }
      out_ += o_.key_separator;
      MSI_RETURN_IF_ERROR(write(e->second, depth + 1));
    }
    newline(depth);
    out_ += '}';
    return Status::ok();
  }

  const JsonDumpOptions& o_;
  std::string out_;
};

}  // namespace

std::string py_str(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: return "";
    case K::kNone: return "None";
    case K::kBool: return v.as_bool() ? "True" : "False";
    case K::kInt: return std::to_string(v.as_int());
    case K::kFloat: return py_float_repr(v.as_double());
    case K::kString: return v.as_string();
    default: {
      std::string out;
      append_repr(out, v);
      return out;
    }
  }
}

std::string py_repr(const Value& v) {
  std::string out;
  append_repr(out, v);
  return out;
}

Result<std::string> py_percent_format(std::string_view fmt, const Value& args) {
  const ValueList single{args};
  const ValueList& positional = args.kind() == Value::Kind::kTuple ? args.items() : single;
  // CPython treats any non-tuple, non-str argument with __getitem__ as a mapping: unused
  // arguments are then no error.
  const bool mapping_like =
      args.is_mapping() || args.kind() == Value::Kind::kList || args.is_undefined();
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  size_t i = 0;
  auto fail = [](std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); };
  while (i < fmt.size()) {
    char ch = fmt[i++];
    if (ch != '%') {
      out += ch;
      continue;
    }
    if (i >= fmt.size()) return fail("incomplete format");
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string_view::npos) return fail("incomplete format key");
      if (args.is_undefined()) return undefined_error(args);
      if (!args.is_mapping()) return fail("format requires a mapping");
      arg = args.dict().find(fmt.substr(i + 1, close - i - 1));
      if (arg == nullptr) return fail(py_repr_string(fmt.substr(i + 1, close - i - 1)));
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string_view("#0- +").find(fmt[i]) != std::string_view::npos) {
      flags += fmt[i++];
    }
    std::string width;
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) width += fmt[i++];
    std::string precision;
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      precision = ".";
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i])))
        precision += fmt[i++];
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) return fail("incomplete format");
    char conv = fmt[i++];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (args.is_undefined()) return undefined_error(args);
      if (next >= positional.size()) return fail("not enough arguments for format string");
      arg = &positional[next++];
    }
    std::string text;
    std::string spec = "%" + flags + width + precision;
    char buf[512];
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::u32string cps = decode_utf8(conv == 's' ? py_str(*arg) : py_repr(*arg));
        if (precision.size() > 1) cps.resize(std::min(cps.size(), std::stoul(precision.substr(1))));
        text = encode_utf8(cps);
        size_t w = width.empty() ? 0 : std::stoul(width);
        if (cps.size() < w) {
          std::string pad(w - cps.size(), ' ');
          text = flags.find('-') != std::string::npos ? text + pad : pad + text;
        }
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (!arg->is_number()) {
          return fail(
              fmt::format("%{} format: a real number is required, not {}", conv, type_name(*arg)));
        }
        long long n = arg->is_float() ? static_cast<long long>(arg->as_double()) : arg->as_int();
        std::snprintf(buf, sizeof(buf),
                      (spec + "ll" + (conv == 'u' || conv == 'i' ? 'd' : conv)).c_str(), n);
        text = buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg->is_number()) {
          return fail(fmt::format("must be real number, not {}", type_name(*arg)));
        }
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), arg->as_double());
        text = buf;
        break;
      }
      case 'c':
        if (arg->is_string() && n_code_points(arg->as_string()) == 1) {
          text = arg->as_string();
        } else if (arg->is_int()) {
          append_utf8(text, static_cast<char32_t>(arg->as_int()));
        } else {
          return fail("%c requires int or char");
        }
        break;
      default: return fail(fmt::format("unsupported format character '{}'", conv));
    }
    out += text;
  }
  if (!used_mapping && next < positional.size() && !mapping_like) {
    return fail("not all arguments converted during string formatting");
  }
  return out;
}

Result<std::string> py_json_dumps(const Value& v, const JsonDumpOptions& options) {
  JsonWriter w(options);
  MSI_RETURN_IF_ERROR(w.write(v, 0));
  return w.take();
}

}  // namespace msi::jinja

#include "tokenizer/jinja/py_string.h"

#include <algorithm>

#include <fmt/format.h>
#include <utf8proc.h>

namespace msi::jinja {

namespace {

constexpr char32_t kEscapeBase = 0xDC00;  // invalid byte b is carried as U+DC00 + b

utf8proc_category_t category(char32_t c) {
  if (c > 0x10FFFF) return UTF8PROC_CATEGORY_CN;
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

char32_t py_to_title(char32_t c) {
  if (c > 0x10FFFF) return c;
  return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c)));
}

// Full case mappings (Unicode SpecialCasing) that differ from the simple ones utf8proc gives;
// CPython's str.upper()/title()/lower() use the full ones.
struct SpecialCase {
  char32_t c;
  const char* upper;
  const char* title;
};
constexpr SpecialCase kSpecialCases[] = {
    {0x00DF, "SS", "Ss"},            // ß
    {0x0149, "\u02BCN", "\u02BCN"},  // ŉ
    {0xFB00, "FF", "Ff"},           {0xFB01, "FI", "Fi"},   {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},         {0xFB04, "FFL", "Ffl"}, {0xFB05, "ST", "St"},
    {0xFB06, "ST", "St"},
};

const SpecialCase* special_case(char32_t c) {
  for (const SpecialCase& sc : kSpecialCases) {
    if (sc.c == c) return &sc;
  }
  return nullptr;
}

void append_upper(std::string& out, char32_t c) {
  if (const SpecialCase* sc = special_case(c)) {
    out += sc->upper;
  } else {
    append_utf8(out, py_to_upper(c));
  }
}

void append_title(std::string& out, char32_t c) {
  if (const SpecialCase* sc = special_case(c)) {
    out += sc->title;
  } else {
    append_utf8(out, py_to_title(c));
  }
}

void append_lower(std::string& out, char32_t c) {
  if (c == 0x0130) {  // İ lower-cases to i + combining dot above
    out += "i\u0307";
  } else {
    append_utf8(out, py_to_lower(c));
  }
}

}  // namespace

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                          static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {
      out.push_back(kEscapeBase + static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.push_back(static_cast<char32_t>(cp));
      i += static_cast<size_t>(n);
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c >= kEscapeBase + 0x80 && c <= kEscapeBase + 0xFF) {
    out.push_back(static_cast<char>(c - kEscapeBase));
  } else if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t n_code_points(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

bool py_is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

bool py_is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

bool py_is_cased(char32_t c) {
  utf8proc_category_t cat = category(c);
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) {
    return true;
  }
  return py_to_upper(c) != c || py_to_lower(c) != c;
}

bool py_is_alnum(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

char32_t py_to_upper(char32_t c) {
  if (c > 0x10FFFF) return c;
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}

char32_t py_to_lower(char32_t c) {
  if (c > 0x10FFFF) return c;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right) {
  std::u32string cps = decode_utf8(s);
  std::u32string set = chars ? decode_utf8(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : py_is_space(c);
  };
  size_t begin = 0;
  size_t end = cps.size();
  if (left) {
    while (begin < end && strip_it(cps[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip_it(cps[end - 1])) --end;
  }
  return encode_utf8(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t remaining = maxsplit < 0 ? INT64_MAX : maxsplit;
  if (sep) {
    size_t i = 0;
    while (remaining-- > 0) {
      size_t pos = s.find(*sep, i);
      if (pos == std::string_view::npos) break;
      out.emplace_back(s.substr(i, pos - i));
      i = pos + sep->size();
    }
    out.emplace_back(s.substr(i));
    return out;
  }
  std::u32string cps = decode_utf8(s);
  size_t n = cps.size();
  size_t i = 0;
  while (remaining-- > 0) {
    while (i < n && py_is_space(cps[i])) ++i;
    if (i == n) break;
    size_t j = i++;
    while (i < n && !py_is_space(cps[i])) ++i;
    out.push_back(encode_utf8(std::u32string_view(cps).substr(j, i - j)));
  }
  if (i < n) {
    while (i < n && py_is_space(cps[i])) ++i;
    if (i != n) out.push_back(encode_utf8(std::u32string_view(cps).substr(i)));
  }
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep,
                                   int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t remaining = maxsplit < 0 ? INT64_MAX : maxsplit;
  if (sep) {
    size_t end = s.size();
    while (remaining-- > 0) {
      if (end < sep->size()) break;
      size_t pos = s.rfind(*sep, end - sep->size());
      if (pos == std::string_view::npos) break;
      out.emplace_back(s.substr(pos + sep->size(), end - pos - sep->size()));
      end = pos;
    }
    out.emplace_back(s.substr(0, end));
  } else {
    std::u32string cps = decode_utf8(s);
    size_t i = cps.size();
    while (remaining-- > 0) {
      while (i > 0 && py_is_space(cps[i - 1])) --i;
      if (i == 0) break;
      size_t j = i--;
      while (i > 0 && !py_is_space(cps[i - 1])) --i;
      out.push_back(encode_utf8(std::u32string_view(cps).substr(i, j - i)));
    }
    if (i > 0) {
      while (i > 0 && py_is_space(cps[i - 1])) --i;
      if (i != 0) out.push_back(encode_utf8(std::u32string_view(cps).substr(0, i)));
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::u32string cps = decode_utf8(s);
  std::vector<std::string> out;
  size_t i = 0;
  size_t n = cps.size();
  while (i < n) {
    size_t j = i;
    while (j < n && !is_line_break(cps[j])) ++j;
    size_t eol = j;
    if (j < n) {
      j += (cps[j] == '\r' && j + 1 < n && cps[j + 1] == '\n') ? 2 : 1;
      if (keepends) eol = j;
    }
    out.push_back(encode_utf8(std::u32string_view(cps).substr(i, eol - i)));
    i = j;
  }
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out;
  for (char32_t c : decode_utf8(s)) append_upper(out, c);
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  for (char32_t c : decode_utf8(s)) append_lower(out, c);
  return out;
}

std::string py_str_title(std::string_view s) {
  std::string out;
  bool previous_is_cased = false;
  for (char32_t c : decode_utf8(s)) {
    if (previous_is_cased) {
      append_lower(out, c);
    } else {
      append_title(out, c);
    }
    previous_is_cased = py_is_cased(c);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (char32_t c : decode_utf8(s)) {
    if (first) {
      append_title(out, c);
    } else {
      append_lower(out, c);
    }
    first = false;
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  std::string out;
  for (char32_t c : decode_utf8(s)) {
    if (py_to_upper(c) != c || special_case(c) != nullptr) {
      append_upper(out, c);
    } else {
      append_lower(out, c);
    }
  }
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count) {
  int64_t remaining = count < 0 ? INT64_MAX : count;
  std::string out;
  if (old.empty()) {
    std::u32string cps = decode_utf8(s);
    for (char32_t c : cps) {
      if (remaining > 0) {
        out += repl;
        --remaining;
      }
      append_utf8(out, c);
    }
    if (remaining > 0) out += repl;
    return out;
  }
  size_t i = 0;
  while (remaining > 0) {
    size_t pos = s.find(old, i);
    if (pos == std::string_view::npos) break;
    out += s.substr(i, pos - i);
    out += repl;
    i = pos + old.size();
    --remaining;
  }
  out += s.substr(i);
  return out;
}

int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(n_code_points(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos;
       pos = s.find(sub, pos + sub.size())) {
    ++n;
  }
  return n;
}

int64_t py_find(std::string_view s, std::string_view sub, bool reverse) {
  size_t pos = reverse ? s.rfind(sub) : s.find(sub);
  if (pos == std::string_view::npos) return -1;
  return static_cast<int64_t>(n_code_points(s.substr(0, pos)));
}

std::string py_repr_string(std::string_view s) {
  char quote = '\'';
  if (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) quote = '"';
  std::string out(1, quote);
  for (char32_t c : decode_utf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(c));
    } else if (c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else if (c >= kEscapeBase + 0x80 && c <= kEscapeBase + 0xFF) {
      out += fmt::format("\\udc{:02x}", static_cast<uint32_t>(c - kEscapeBase));
    } else if (py_is_printable(c)) {
      append_utf8(out, c);
    } else if (c <= 0xff) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(c));
    } else if (c <= 0xffff) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<uint32_t>(c));
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace msi::jinja

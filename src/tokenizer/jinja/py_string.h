// Python `str` semantics over UTF-8: templates index, slice, strip, split and case-map strings
// by code point, and must match CPython byte for byte (str.split(), str.title(), repr() ...).
//
// Pure functions; thread-safe. Bytes that are not valid UTF-8 round-trip unchanged (they are
// carried as lone code points 0xDC80..0xDCFF, like Python's surrogateescape).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace msi::jinja {

std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t n_code_points(std::string_view s);

// Python's str.isspace() for one code point (Unicode White_Space-like set CPython uses).
bool py_is_space(char32_t c);
// str.isprintable() for one code point: what repr() leaves unescaped.
bool py_is_printable(char32_t c);
bool py_is_cased(char32_t c);
bool py_is_alnum(char32_t c);
char32_t py_to_upper(char32_t c);
char32_t py_to_lower(char32_t c);

// str.strip/lstrip/rstrip(chars); chars == nullopt strips whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right);
// str.split(sep, maxsplit) / str.rsplit; sep == nullopt splits on runs of whitespace. `sep`
// must not be empty (the caller raises ValueError).
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep,
                                   int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_str_title(std::string_view s);  // str.title()
std::string py_capitalize(std::string_view s);
std::string py_swapcase(std::string_view s);

// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl,
                       int64_t count);
// str.count(sub): non-overlapping occurrences.
int64_t py_count(std::string_view s, std::string_view sub);
// str.find / str.rfind: a code point index, or -1.
int64_t py_find(std::string_view s, std::string_view sub, bool reverse);

// repr(str): single quotes unless the text has ' and no ", escapes like CPython.
std::string py_repr_string(std::string_view s);

}  // namespace msi::jinja

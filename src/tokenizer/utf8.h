// UTF-8 helpers for the tokenizer: validation, code point iteration, lossy decoding of byte
// strings (the WHATWG/`TextDecoder` rule: each maximal invalid subpart becomes one U+FFFD), and
// the Unicode character classes the tokenizer components need.
//
// Free functions on values; thread-safe; none blocks. Functions returning std::string allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace msi::tok {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Byte length of the character whose lead byte is `lead` in valid UTF-8 (1 for a stray byte).
inline size_t utf8_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the character at s[pos] and advances pos. Requires valid UTF-8 and pos < s.size().
char32_t next_code_point(std::string_view s, size_t& pos);

// Appends the UTF-8 encoding of `cp` (a scalar value) to `out`.
void append_utf8(std::string& out, char32_t cp);

// Bytes → valid UTF-8, replacing every maximal invalid subpart with U+FFFD (what `TextDecoder`
// with fatal=false and Rust's from_utf8_lossy do).
std::string utf8_lossy(std::string_view bytes);
// Appends utf8_lossy(bytes) to out.
void append_utf8_lossy(std::string& out, std::string_view bytes);

// Length of the longest prefix of `s` that does not end inside an incomplete (but so far valid)
// UTF-8 sequence: s.size() unless s ends with 1-3 bytes that start a character and need more.
size_t complete_utf8_prefix(std::string_view s);

// Unicode White_Space (what Rust's char::is_whitespace and JS's trim use, less U+FEFF).
bool is_whitespace(char32_t cp);
// Rust's char::is_alphanumeric: a letter (L*) or a number (Nd, Nl, No).
bool is_alphanumeric(char32_t cp);
// Rust's char::is_numeric: Nd, Nl or No.
bool is_numeric(char32_t cp);

}  // namespace msi::tok

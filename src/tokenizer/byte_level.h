// The GPT-2 byte-level alphabet: every byte 0..255 is shown as one printable code point
// (printable Latin-1 bytes as themselves, the others as U+0100 and up), so byte strings become
// vocabulary strings like "Ġhello" (Ġ = U+0120 = the space byte). Also the GPT-2 split regex.
//
// Static tables; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace msi::tok {

// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
extern const char kGpt2SplitRegex[];

// Appends the byte-level spelling of `bytes` (each byte → 1 or 2 UTF-8 bytes).
void append_byte_level(std::string& out, std::string_view bytes);
// The byte spelled by code point `cp`, or -1 if `cp` is not in the alphabet.
int byte_level_byte(char32_t cp);

}  // namespace msi::tok

#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace msi::tok {

const char kGpt2SplitRegex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

struct Tables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<int16_t, 324> cp_to_byte{};  // every mapped code point is below 256 + 68
  std::array<std::array<char, 2>, 256> utf8{};
  std::array<uint8_t, 256> utf8_len{};

  Tables() {
    cp_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n_shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : 256 + n_shifted++;
      byte_to_cp[b] = cp;
      cp_to_byte[cp] = static_cast<int16_t>(b);
      std::string s;
      append_utf8(s, cp);
      utf8_len[b] = static_cast<uint8_t>(s.size());
      for (size_t i = 0; i < s.size(); ++i) utf8[b][i] = s[i];
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

void append_byte_level(std::string& out, std::string_view bytes) {
  const Tables& t = tables();
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    out.append(t.utf8[b].data(), t.utf8_len[b]);
  }
}

int byte_level_byte(char32_t cp) {
  const Tables& t = tables();
  return cp < t.cp_to_byte.size() ? t.cp_to_byte[cp] : -1;
}

}  // namespace msi::tok

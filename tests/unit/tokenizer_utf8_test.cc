// UTF-8 helpers (src/tokenizer/utf8.h): validation, lossy decoding with one U+FFFD per maximal
// invalid subpart (the WHATWG rule), incomplete tails, and character classes.
#include <string>

#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace msi::tok {
namespace {

TEST(Utf8Test, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii, long enough for the 8-byte fast path"));
  EXPECT_TRUE(is_valid_utf8("é中😀\xF4\x8F\xBF\xBF"));
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));
  for (const std::string bad :
       {"\x80", "\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
        "\xF5\x80\x80\x80", "\xFF", "abcdefgh\xE4\xB8"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad.size();
  }
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  const std::string r = "\uFFFD";
  EXPECT_EQ(utf8_lossy("ok"), "ok");
  EXPECT_EQ(utf8_lossy("\xE4\xB8"), r);  // one truncated sequence
  EXPECT_EQ(utf8_lossy("\xE4\xB8"
                       "A"),
            r + "A");
  EXPECT_EQ(utf8_lossy("\x80\x80"), r + r);  // two stray continuation bytes
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), r);
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);  // a surrogate: each byte
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), r + r);
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98\x80"
                       "b"),
            "a😀b");
}

TEST(Utf8Test, CompletePrefix) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE4"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xB8"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xB8\xAD"), 5u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(complete_utf8_prefix("a\x80"), 2u);  // invalid, not incomplete
}

TEST(Utf8Test, CodePointsAndClasses) {
  const std::string s = "aé中😀";
  size_t pos = 0;
  EXPECT_EQ(next_code_point(s, pos), U'a');
  EXPECT_EQ(next_code_point(s, pos), U'é');
  EXPECT_EQ(next_code_point(s, pos), U'中');
  EXPECT_EQ(next_code_point(s, pos), U'😀');
  EXPECT_EQ(pos, s.size());
  std::string out;
  for (char32_t cp : {U'a', U'é', U'中', U'😀'}) append_utf8(out, cp);
  EXPECT_EQ(out, s);
  EXPECT_TRUE(is_whitespace(U'\u3000'));
  EXPECT_TRUE(is_whitespace(U'\u0085'));
  EXPECT_FALSE(is_whitespace(U'\uFEFF'));
  EXPECT_TRUE(is_numeric(U'٣'));
  EXPECT_TRUE(is_numeric(U'Ⅻ'));
  EXPECT_FALSE(is_numeric(U'x'));
  EXPECT_TRUE(is_alphanumeric(U'ж'));
  EXPECT_FALSE(is_alphanumeric(U'_'));
}

}  // namespace
}  // namespace msi::tok

// Pre-tokenizers (src/tokenizer/pre_tokenizer.h): ByteLevel with and without the GPT-2 regex
// and prefix space, Split with each behaviour and invert, Metaspace (prepend schemes, split),
// Digits, Sequence, null, and unsupported types failing with their names.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/pre_tokenizer.h"

namespace msi::tok {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> pre_tokenize(const json& config, const std::string& text,
                                      bool at_start = true) {
  auto p = make_pre_tokenizer(config);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  if (!p.is_ok() || !*p) return {"<none>"};
  std::vector<PreToken> pieces = {PreToken{text, at_start}};
  const Status s = (*p)->pre_tokenize(&pieces);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

json split(const std::string& behavior, json pattern, bool invert = false) {
  return {{"type", "Split"},
          {"pattern", std::move(pattern)},
          {"behavior", behavior},
          {"invert", invert}};
}

TEST(PreTokenizerTest, ByteLevelWithGpt2Regex) {
  const json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_THAT(pre_tokenize(bl, "Hello world's  end\n"),
              ElementsAre("Hello", "Ġworld", "'s", "Ġ", "Ġend", "Ċ"));
  EXPECT_THAT(pre_tokenize(bl, "x=42;"), ElementsAre("x", "=", "42", ";"));
  // Bytes of non-ASCII characters are spelled with the byte alphabet: é = C3 A9 → Ã ©.
  EXPECT_THAT(pre_tokenize(bl, "é"), ElementsAre("Ã©"));
  const json prefixed = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_THAT(pre_tokenize(prefixed, "Hi you"), ElementsAre("ĠHi", "Ġyou"));
  EXPECT_THAT(pre_tokenize(prefixed, " Hi"), ElementsAre("ĠHi"));
  const json no_regex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_THAT(pre_tokenize(no_regex, "Hi you\t"), ElementsAre("HiĠyouĉ"));
}

TEST(PreTokenizerTest, SplitBehaviours) {
  const json dash = {{"String", "-"}};
  EXPECT_THAT(pre_tokenize(split("Removed", dash), "a-b--c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(pre_tokenize(split("Isolated", dash), "a-b--c"),
              ElementsAre("a", "-", "b", "-", "-", "c"));
  EXPECT_THAT(pre_tokenize(split("MergedWithPrevious", dash), "a-b--c"),
              ElementsAre("a-", "b-", "-", "c"));
  EXPECT_THAT(pre_tokenize(split("MergedWithNext", dash), "a-b--c"),
              ElementsAre("a", "-b", "-", "-c"));
  EXPECT_THAT(pre_tokenize(split("Contiguous", dash), "a-b--c"),
              ElementsAre("a", "-", "b", "--", "c"));
  EXPECT_THAT(pre_tokenize(split("Isolated", dash), "-a-"), ElementsAre("-", "a", "-"));
  EXPECT_THAT(pre_tokenize(split("Isolated", dash), "none"), ElementsAre("none"));
}

TEST(PreTokenizerTest, SplitRegexAndInvert) {
  const json digits = {{"Regex", "\\p{N}+"}};
  EXPECT_THAT(pre_tokenize(split("Isolated", digits), "ab12cd3"),
              ElementsAre("ab", "12", "cd", "3"));
  // Inverted, the matches are the content and the rest is the delimiter.
  EXPECT_THAT(pre_tokenize(split("Removed", digits, true), "ab12cd3"), ElementsAre("12", "3"));
  EXPECT_THAT(pre_tokenize(split("MergedWithPrevious", digits, true), "12cd3e"),
              ElementsAre("12cd", "3e"));
  // A Qwen/Llama-3 style pattern with (?i:...) and a lookahead.
  const json llama3 = {{"Regex",
                        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}};
  EXPECT_THAT(pre_tokenize(split("Isolated", llama3), "I'M here  12345!\n\nok"),
              ElementsAre("I", "'M", " here", " ", " ", "123", "45", "!\n\n", "ok"));
}

TEST(PreTokenizerTest, Metaspace) {
  const json always = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_THAT(pre_tokenize(always, "Hey friend"), ElementsAre("▁Hey", "▁friend"));
  EXPECT_THAT(pre_tokenize(always, " Hey"), ElementsAre("▁Hey"));
  EXPECT_THAT(pre_tokenize(always, "Hey", /*at_start=*/false), ElementsAre("▁Hey"));
  json no_split = always;
  no_split["split"] = false;
  EXPECT_THAT(pre_tokenize(no_split, "Hey friend"), ElementsAre("▁Hey▁friend"));
  json first = always;
  first["prepend_scheme"] = "first";
  EXPECT_THAT(pre_tokenize(first, "Hey you"), ElementsAre("▁Hey", "▁you"));
  EXPECT_THAT(pre_tokenize(first, "Hey you", /*at_start=*/false), ElementsAre("Hey", "▁you"));
  json never = always;
  never["prepend_scheme"] = "never";
  EXPECT_THAT(pre_tokenize(never, "Hey you"), ElementsAre("Hey", "▁you"));
  // Files from before prepend_scheme: add_prefix_space.
  const json legacy = {{"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", false}};
  EXPECT_THAT(pre_tokenize(legacy, "Hey you"), ElementsAre("Hey", "▁you"));
}

TEST(PreTokenizerTest, Digits) {
  EXPECT_THAT(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "abc123d٤"),
              ElementsAre("abc", "1", "2", "3", "d", "٤"));
  EXPECT_THAT(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "abc123d4"),
              ElementsAre("abc", "123", "d", "4"));
}

TEST(PreTokenizerTest, SequenceAndNull) {
  const json seq = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({split("Isolated", {{"Regex", "\\p{N}{1,3}"}}),
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  EXPECT_THAT(pre_tokenize(seq, "x 12345"), ElementsAre("xĠ", "123", "45"));
  auto none = make_pre_tokenizer(nullptr);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(*none, nullptr);
}

TEST(PreTokenizerTest, UnsupportedTypesFailWithTheirNames) {
  for (const char* type : {"Whitespace", "WhitespaceSplit", "BertPreTokenizer", "Punctuation",
                           "UnicodeScripts", "CharDelimiterSplit"}) {
    auto p = make_pre_tokenizer({{"type", type}});
    ASSERT_FALSE(p.is_ok()) << type;
    EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented);
    EXPECT_THAT(p.status().message(), HasSubstr(type));
  }
  auto behavior = make_pre_tokenizer(split("Sideways", {{"String", "-"}}));
  ASSERT_FALSE(behavior.is_ok());
  EXPECT_THAT(behavior.status().message(), HasSubstr("Sideways"));
  auto regex = make_pre_tokenizer(split("Isolated", {{"Regex", "[unclosed"}}));
  ASSERT_FALSE(regex.is_ok());
  EXPECT_EQ(regex.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(regex.status().message(), HasSubstr("[unclosed"));
}

}  // namespace
}  // namespace msi::tok

// Normalizers (src/tokenizer/normalizer.h): NFC/NFKC, Prepend, Replace with String and Regex
// patterns, Strip, Sequence, null, and unsupported types failing with their names; plus how a
// normalizer reaches encode() and normalized added tokens.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer.h"

namespace msi::tok {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string normalize(const json& config, const std::string& text) {
  auto n = make_normalizer(config);
  EXPECT_TRUE(n.is_ok()) << n.status().to_string();
  if (!n.is_ok() || !*n) return "<no normalizer>";
  std::string out;
  const Status s = (*n)->normalize(text, &out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

TEST(NormalizerTest, UnicodeForms) {
  EXPECT_EQ(normalize({{"type", "NFC"}}, "cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(normalize({{"type", "NFC"}}, "\u1100\u1161\u11a8"), "\uac01");  // Hangul jamo
  EXPECT_EQ(normalize({{"type", "NFC"}}, "plain ascii"), "plain ascii");
  EXPECT_EQ(normalize({{"type", "NFD"}}, "caf\u00e9"), "cafe\u0301");
  EXPECT_EQ(normalize({{"type", "NFKC"}}, "\ufb01le \u2460"), "file 1");
  EXPECT_EQ(normalize({{"type", "NFKD"}}, "\u00e9"), "e\u0301");
  EXPECT_EQ(normalize({{"type", "NFC"}}, std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(NormalizerTest, PrependAndReplaceAsInLlama) {
  const json llama = {
      {"type", "Sequence"},
      {"normalizers",
       json::array({
           {{"type", "Prepend"}, {"prepend", "\u2581"}},
           {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}},
       })}};
  EXPECT_EQ(normalize(llama, "Hello  world"), "\u2581Hello\u2581\u2581world");
  EXPECT_EQ(normalize(llama, ""), "");  // an empty string stays empty
}

TEST(NormalizerTest, ReplaceRegex) {
  const json collapse = {
      {"type", "Replace"}, {"pattern", {{"Regex", "\\s{2,}"}}}, {"content", " "}};
  EXPECT_EQ(normalize(collapse, "a  b\t\t\tc d"), "a b c d");
  const json letters = {{"type", "Replace"}, {"pattern", {{"Regex", "\\p{Lu}"}}}, {"content", "*"}};
  EXPECT_EQ(normalize(letters, "Hello Ωmega"), "*ello *mega");
  const json literal = {{"type", "Replace"}, {"pattern", {{"String", ".*"}}}, {"content", "!"}};
  EXPECT_EQ(normalize(literal, "a.*b.*"), "a!b!");
}

TEST(NormalizerTest, StripAndEmptySequence) {
  EXPECT_EQ(
      normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, " \t x y \u3000"),
      "x y");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  x  "),
            "  x");
  EXPECT_EQ(normalize({{"type", "Sequence"}, {"normalizers", json::array()}}, "as is"), "as is");
  auto none = make_normalizer(nullptr);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(*none, nullptr);
}

TEST(NormalizerTest, UnsupportedTypesFailWithTheirNames) {
  for (const char* type : {"BertNormalizer", "Lowercase", "Precompiled", "StripAccents"}) {
    auto n = make_normalizer({{"type", type}});
    ASSERT_FALSE(n.is_ok()) << type;
    EXPECT_EQ(n.status().code(), StatusCode::kUnimplemented);
    EXPECT_THAT(n.status().message(), HasSubstr(type));
  }
  // Nested in a sequence too.
  auto nested = make_normalizer(
      {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFC"}}, {{"type", "Nmt"}}})}});
  ASSERT_FALSE(nested.is_ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("Nmt"));
  // A bad regex is an InvalidArgument.
  auto bad = make_normalizer(
      {{"type", "Replace"}, {"pattern", {{"Regex", "(unclosed"}}}, {"content", ""}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// A character-level BPE vocabulary over a few letters, with the given normalizer and added
// tokens.
json tokenizer_with(json normalizer, json added_tokens) {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"a", "b", "x", "y", "<", ">", "\u2581", "\u00e9"}) vocab[s] = id++;
  return {{"added_tokens", std::move(added_tokens)},
          {"normalizer", std::move(normalizer)},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

TEST(NormalizerTest, EncodeNormalizesEachPieceBetweenAddedTokens) {
  const json nfc = {{"type", "NFC"}};
  auto t = Tokenizer::from_json(tokenizer_with(nfc, json::array()));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_THAT(*(*t)->encode("e\u0301"), ElementsAre(7));
  EXPECT_THAT(*(*t)->encode("a\u00e9"), ElementsAre(0, 7));
  EXPECT_THAT(*(*t)->encode("ae\u0301"), ElementsAre(0, 7));
  // Without the normalizer neither "e" nor U+0301 is in the vocab (no unk token: dropped).
  auto raw = Tokenizer::from_json(tokenizer_with(nullptr, json::array()));
  ASSERT_TRUE(raw.is_ok());
  EXPECT_THAT(*(*raw)->encode("ae\u0301"), ElementsAre(0));
}

TEST(NormalizerTest, NormalizedAddedTokensMatchNormalizedText) {
  // Replace x → y; the added token "<x>" with normalized=true is matched as "<y>" in the
  // normalized text, the one with normalized=false ("<a>") only in the raw text.
  const json replace = {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "y"}};
  const json added = json::array({
      {{"id", 10}, {"content", "<x>"}, {"normalized", true}, {"special", false}},
      {{"id", 11}, {"content", "<a>"}, {"normalized", false}, {"special", true}},
  });
  auto t = Tokenizer::from_json(tokenizer_with(replace, added));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_THAT(*(*t)->encode("a<x>b"), ElementsAre(0, 10, 1));
  EXPECT_THAT(*(*t)->encode("a<y>b"), ElementsAre(0, 10, 1));
  EXPECT_THAT(*(*t)->encode("x<a>y"), ElementsAre(3, 11, 3));
  EXPECT_EQ(*(*t)->decode(std::vector<int32_t>{0, 10, 11, 1}), "a <x> <a> b");
}

}  // namespace
}  // namespace msi::tok

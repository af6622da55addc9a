// Decoders (src/tokenizer/decoder.h): ByteLevel (characters split across tokens, invalid bytes,
// added tokens passed through), Metaspace, the Llama chain Replace + ByteFallback + Fuse +
// Strip, unsupported types failing with their names, transformers' clean-up of spaces, and
// decode(skip_special_tokens) through a Tokenizer.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/decoder.h"
#include "tokenizer/hf_tokenizer.h"

namespace msi::tok {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string decode(const json& config, const std::vector<std::string>& tokens,
                   const std::vector<bool>& added = {}) {
  auto d = make_decoder(config);
  EXPECT_TRUE(d.is_ok()) << d.status().to_string();
  if (!d.is_ok() || !*d) return "<no decoder>";
  std::vector<DecodeToken> list;
  for (size_t i = 0; i < tokens.size(); ++i) {
    list.push_back(DecodeToken{tokens[i], i < added.size() && added[i]});
  }
  const Status s = (*d)->decode_chain(&list);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::string out;
  for (const auto& t : list) out += t.text;
  return out;
}

const json kByteLevel = {
    {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
const json kLlama = {
    {"type", "Sequence"},
    {"decoders", json::array({
                     {{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}},
                     {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}},
                 })}};

TEST(DecoderTest, ByteLevel) {
  EXPECT_EQ(decode(kByteLevel, {"Hello", "Ġworld", "Ċ"}), "Hello world\n");
  // 😀 = F0 9F 98 80 spelled "ðŁĺĢ", split across tokens.
  EXPECT_EQ(decode(kByteLevel, {"ðŁ", "ĺ", "Ģ!"}), "😀!");
  // A lone lead byte and a stray continuation byte: one U+FFFD each.
  EXPECT_EQ(decode(kByteLevel, {"ðŁ", "a", "Ģ"}), "\uFFFDa\uFFFD");
  // Added tokens pass through, and split the byte runs around them.
  EXPECT_EQ(decode(kByteLevel, {"Hi", "<|im_end|>", "Ġthere"}, {false, true, false}),
            "Hi<|im_end|> there");
  // A token outside the byte alphabet stands for its own UTF-8 bytes.
  EXPECT_EQ(decode(kByteLevel, {"a", "<｜end｜>"}), "a<｜end｜>");
}

TEST(DecoderTest, Metaspace) {
  const json ms = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(decode(ms, {"▁Hello", "▁world", "!"}), "Hello world!");
  EXPECT_EQ(decode(ms, {"▁▁x"}), " x");
  json never = ms;
  never["prepend_scheme"] = "never";
  EXPECT_EQ(decode(never, {"▁Hello", "▁world"}), " Hello world");
}

TEST(DecoderTest, LlamaChain) {
  EXPECT_EQ(decode(kLlama, {"▁Hello", "▁world"}), "Hello world");
  EXPECT_EQ(decode(kLlama, {"▁▁", "x"}), " x");  // only one leading space is stripped
  EXPECT_EQ(decode(kLlama, {"▁Hi", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "▁!"}), "Hi😀 !");
  // Invalid byte runs: one U+FFFD per maximal invalid subpart.
  EXPECT_EQ(decode(kLlama, {"<0x41>", "<0xE4>", "<0xB8>", "▁x"}), "A\uFFFD x");
  EXPECT_EQ(decode(kLlama, {"<0x80>", "<0x80>"}), "\uFFFD\uFFFD");
  // Not byte tokens: wrong length, bad hex.
  EXPECT_EQ(decode(kLlama, {"<0x4>", "<0xZZ>", "<0x41 >"}), "<0x4><0xZZ><0x41 >");
}

TEST(DecoderTest, StripStartAndStop) {
  const json strip = {{"type", "Strip"}, {"content", "_"}, {"start", 2}, {"stop", 1}};
  EXPECT_EQ(decode(strip, {"___a__", "b_"}), "_a_b");
  EXPECT_EQ(decode(strip, {"_"}), "");
}

TEST(DecoderTest, ReplaceRegex) {
  const json replace = {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", "_"}};
  EXPECT_EQ(decode(replace, {"a  b", "\tc"}), "a_b_c");
}

TEST(DecoderTest, UnsupportedTypesFailWithTheirNames) {
  for (const char* type : {"CTC", "WordPiece", "BPEDecoder"}) {
    auto d = make_decoder({{"type", type}});
    ASSERT_FALSE(d.is_ok()) << type;
    EXPECT_EQ(d.status().code(), StatusCode::kUnimplemented);
    EXPECT_THAT(d.status().message(), HasSubstr(type));
  }
  auto nested =
      make_decoder({{"type", "Sequence"}, {"decoders", json::array({{{"type", "Magic"}}})}});
  ASSERT_FALSE(nested.is_ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("Magic"));
}

TEST(DecoderTest, CleanUpTokenization) {
  EXPECT_EQ(clean_up_tokenization("Hello , world . Is it ? Yes ! I do n't , it 's ok"),
            "Hello, world. Is it? Yes! I don't, it's ok");
  EXPECT_EQ(clean_up_tokenization("we 're , they 've , I 'm , a ' b"), "we're, they've, I'm, a'b");
  EXPECT_EQ(clean_up_tokenization("  ."), " .");
  EXPECT_EQ(clean_up_tokenization("x ' 've"), "x''ve");  // rules apply in order, globally
}

// A byte-level tokenizer with special and non-special added tokens.
json byte_level_tokenizer() {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"H", "i", "Ġ", "!", "Hi", "ĠHi"}) vocab[s] = id++;
  return {
      {"added_tokens", json::array({
                           {{"id", 6}, {"content", "<|end|>"}, {"special", true}},
                           {{"id", 7}, {"content", "<think>"}, {"special", false}},
                       })},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", kByteLevel},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"H i", "Ġ Hi"})}}}};
}

TEST(DecoderTest, SkipSpecialTokensSkipsOnlySpecialAddedTokens) {
  auto t = HfTokenizer::create(byte_level_tokenizer(), TokenizerOptions());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  const auto ids = *(*t)->encode("<think>Hi Hi!<|end|>", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{7, 4, 5, 3, 6}));
  EXPECT_EQ(*(*t)->decode(ids, false), "<think>Hi Hi!<|end|>");
  EXPECT_EQ(*(*t)->decode(ids, true), "<think>Hi Hi!");
}

TEST(DecoderTest, CleanUpOptionFromTokenizerConfig) {
  TokenizerOptions options =
      TokenizerOptions::from_config({{"clean_up_tokenization_spaces", true}});
  ASSERT_TRUE(options.clean_up_tokenization_spaces);
  EXPECT_FALSE(TokenizerOptions::from_config(json::object()).clean_up_tokenization_spaces);
  auto t = HfTokenizer::create(byte_level_tokenizer(), options);
  ASSERT_TRUE(t.is_ok());
  const auto ids = *(*t)->encode("Hi !", false);
  EXPECT_EQ(*(*t)->decode(ids, false), "Hi!");
  EXPECT_EQ(*(*t)->decode_raw(ids, false), "Hi !");
}

}  // namespace
}  // namespace msi::tok

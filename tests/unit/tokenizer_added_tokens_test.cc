// Added tokens (src/tokenizer/added_vocabulary.h) through Tokenizer::from_json: leftmost-longest
// matching before everything else, lstrip/rstrip, single_word, special vs not, and the
// post-processors that add special tokens (TemplateProcessing, Sequence, ByteLevel, Bert).
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace msi {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Characters a b c x and space are ids 0..4 (no merges, no pre-tokenizer: the model sees
// whole pieces and splits them into characters).
json tokenizer_json(json added_tokens, json post_processor = nullptr) {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"a", "b", "c", "x", " "}) vocab[s] = id++;
  return {{"added_tokens", std::move(added_tokens)},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", std::move(post_processor)},
          {"decoder", {{"type", "Fuse"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

json added(int id, const std::string& content, json flags = json::object()) {
  json t = {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
            {"rstrip", false}, {"normalized", false}, {"special", true}};
  t.update(flags);
  return t;
}

std::unique_ptr<Tokenizer> make(const json& j) {
  auto t = Tokenizer::from_json(j);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> encode(const Tokenizer& t, const std::string& text, bool special = false) {
  auto ids = t.encode(text, special);
  EXPECT_TRUE(ids.is_ok()) << ids.status().to_string();
  return ids.is_ok() ? *ids : std::vector<int32_t>{};
}

TEST(AddedTokensTest, LongestMatchFirst) {
  auto t =
      make(tokenizer_json(json::array({added(10, "<a>"), added(11, "<a><b>"), added(12, "b>")})));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "a<a><b>c"), ElementsAre(0, 11, 2));
  EXPECT_THAT(encode(*t, "<a><a>b>"), ElementsAre(10, 10, 12));
  EXPECT_THAT(encode(*t, "<a"), ElementsAre(0));  // "<" is not in the vocab: dropped
  EXPECT_THAT(encode(*t, "cab"), ElementsAre(2, 0, 1));
}

TEST(AddedTokensTest, LstripAndRstripSwallowWhitespace) {
  auto t = make(tokenizer_json(json::array({
      added(10, "<l>", {{"lstrip", true}}),
      added(11, "<r>", {{"rstrip", true}}),
      added(12, "<n>"),
  })));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "a \t <l> b"), ElementsAre(0, 10, 4, 1));
  EXPECT_THAT(encode(*t, "a <r> \n b"), ElementsAre(0, 4, 11, 1));
  EXPECT_THAT(encode(*t, "a <n> b"), ElementsAre(0, 4, 12, 4, 1));
  EXPECT_THAT(encode(*t, "   <l>"), ElementsAre(10));
}

TEST(AddedTokensTest, SingleWordOnlyMatchesWholeWords) {
  auto t = make(tokenizer_json(json::array({added(10, "ab", {{"single_word", true}})})));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "ab"), ElementsAre(10));
  EXPECT_THAT(encode(*t, "x ab c"), ElementsAre(3, 4, 10, 4, 2));
  EXPECT_THAT(encode(*t, "xab"), ElementsAre(3, 0, 1));
  EXPECT_THAT(encode(*t, "abc"), ElementsAre(0, 1, 2));
  EXPECT_THAT(encode(*t, "ab_"), ElementsAre(0, 1));  // '_' is a word character (not in vocab)
}

TEST(AddedTokensTest, SkipSpecialTokensInDecode) {
  auto t =
      make(tokenizer_json(json::array({added(10, "<s>"), added(11, "<w>", {{"special", false}})})));
  ASSERT_TRUE(t);
  const auto ids = encode(*t, "<s>a<w>b");
  EXPECT_THAT(ids, ElementsAre(10, 0, 11, 1));
  EXPECT_EQ(*t->decode(ids, false), "<s>a<w>b");
  EXPECT_EQ(*t->decode(ids, true), "a<w>b");
}

TEST(AddedTokensTest, TemplateProcessingAddsSpecialTokens) {
  const json post = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {10}}, {"tokens", {"<s>"}}}},
        {"</s>", {{"id", "</s>"}, {"ids", {11}}, {"tokens", {"</s>"}}}}}}};
  auto t = make(tokenizer_json(json::array({added(10, "<s>"), added(11, "</s>")}), post));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "ab", true), ElementsAre(10, 0, 1, 11));
  EXPECT_THAT(encode(*t, "ab", false), ElementsAre(0, 1));
  EXPECT_THAT(encode(*t, "", true), ElementsAre(10, 11));

  // In a Sequence with ByteLevel (which does nothing to ids).
  const json seq = {
      {"type", "Sequence"},
      {"processors", json::array({{{"type", "ByteLevel"}, {"trim_offsets", false}}, post})}};
  auto s = make(tokenizer_json(json::array({added(10, "<s>"), added(11, "</s>")}), seq));
  ASSERT_TRUE(s);
  EXPECT_THAT(encode(*s, "c", true), ElementsAre(10, 2, 11));

  const json bert = {{"type", "BertProcessing"}, {"cls", {"<s>", 10}}, {"sep", {"</s>", 11}}};
  auto b = make(tokenizer_json(json::array({added(10, "<s>"), added(11, "</s>")}), bert));
  ASSERT_TRUE(b);
  EXPECT_THAT(encode(*b, "c", true), ElementsAre(10, 2, 11));
}

TEST(AddedTokensTest, BadPostProcessorsFail) {
  auto unknown = Tokenizer::from_json(tokenizer_json(json::array(), {{"type", "Magic"}}));
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(unknown.status().message(), HasSubstr("Magic"));
  const json missing = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}})},
      {"special_tokens", json::object()}};
  auto bad = Tokenizer::from_json(tokenizer_json(json::array(), missing));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("<s>"));
  auto malformed = Tokenizer::from_json(tokenizer_json(json::array({{{"content", "x"}}})));
  ASSERT_FALSE(malformed.is_ok());
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msi

// The BPE model (src/tokenizer/bpe.h) through Tokenizer::from_json on small hand-made
// tokenizer.json objects: merge ranks in both spellings, byte fallback, unk and fuse_unk,
// ignore_merges, subword prefix/suffix, load errors, and the Tokenizer contract (invalid UTF-8,
// out-of-range ids, vocab queries, concurrent use).
#include <string>
#include <thread>
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

// A BPE model whose ids are the positions in `tokens`.
json bpe_model(const std::vector<std::string>& tokens, json merges, json extra = json::object()) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", std::move(merges)}};
  model.update(extra);
  return model;
}

json tokenizer_json(json model, json pre_tokenizer = nullptr, json decoder = nullptr) {
  return {{"version", "1.0"},          {"added_tokens", json::array()},
          {"normalizer", nullptr},     {"pre_tokenizer", pre_tokenizer},
          {"post_processor", nullptr}, {"decoder", decoder},
          {"model", std::move(model)}};
}

std::unique_ptr<Tokenizer> make(const json& j) {
  auto t = Tokenizer::from_json(j);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> encode(const Tokenizer& t, const std::string& text) {
  auto ids = t.encode(text, false);
  EXPECT_TRUE(ids.is_ok()) << ids.status().to_string();
  return ids.is_ok() ? *ids : std::vector<int32_t>{};
}

const std::vector<std::string> kAbc = {"a", "b", "c", "ab", "bc", "abc"};  // ids 0..5

TEST(BpeTest, LowestRankMergesFirstInBothSpellings) {
  // (b, c) outranks (a, b): a + bc, then a + bc → abc.
  const json pairs =
      json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})});
  for (const json& merges : {json::array({"b c", "a b", "a bc"}), pairs}) {
    auto t = make(tokenizer_json(bpe_model(kAbc, merges)));
    ASSERT_TRUE(t);
    EXPECT_THAT(encode(*t, "abc"), ElementsAre(5)) << merges.dump();
    EXPECT_THAT(encode(*t, "ab"), ElementsAre(3));
    EXPECT_THAT(encode(*t, "cab"), ElementsAre(2, 3));
  }
  // (a, b) first: ab + c, and no merge makes abc from those.
  auto t = make(tokenizer_json(bpe_model(kAbc, json{"a b", "b c", "a bc"})));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "abc"), ElementsAre(3, 2));
}

TEST(BpeTest, EqualRanksMergeLeftmostFirst) {
  auto t = make(tokenizer_json(bpe_model({"a", "aa"}, json{"a a"})));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "aaa"), ElementsAre(1, 0));
  EXPECT_THAT(encode(*t, "aaaa"), ElementsAre(1, 1));
  EXPECT_THAT(encode(*t, "aaaaa"), ElementsAre(1, 1, 0));
}

TEST(BpeTest, LongWord) {
  auto t = make(tokenizer_json(bpe_model({"a", "aa", "aaaa"}, json{"a a", "aa aa"})));
  ASSERT_TRUE(t);
  const auto ids = encode(*t, std::string(10001, 'a'));
  ASSERT_EQ(ids.size(), 2501u);
  EXPECT_EQ(ids.back(), 0);
}

TEST(BpeTest, ByteFallbackSpellsUnknownCharactersAsBytes) {
  std::vector<std::string> tokens = {"<unk>", "h", "i"};
  for (int b = 0; b < 256; ++b) tokens.push_back(fmt::format("<0x{:02X}>", b));
  const json decoder = {
      {"type", "Sequence"},
      {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  auto t = make(tokenizer_json(
      bpe_model(tokens, json::array(), {{"byte_fallback", true}, {"unk_token", "<unk>"}}), nullptr,
      decoder));
  ASSERT_TRUE(t);
  // é = C3 A9 → <0xC3> <0xA9>; ids of <0xAB> are 3 + AB.
  EXPECT_THAT(encode(*t, "hé"), ElementsAre(1, 3 + 0xC3, 3 + 0xA9));
  const auto emoji = encode(*t, "i😀");
  EXPECT_THAT(emoji, ElementsAre(2, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80));
  EXPECT_EQ(*t->decode(emoji), "i😀");
  // A lone byte of a multi-byte character decodes to U+FFFD.
  EXPECT_EQ(*t->decode(std::vector<int32_t>{2, 3 + 0xF0}), "i\xEF\xBF\xBD");
}

TEST(BpeTest, UnknownCharactersBecomeUnkAndFuse) {
  const auto tokens = std::vector<std::string>{"<unk>", "a"};
  auto plain = make(tokenizer_json(bpe_model(tokens, json::array(), {{"unk_token", "<unk>"}})));
  ASSERT_TRUE(plain);
  EXPECT_THAT(encode(*plain, "axya"), ElementsAre(1, 0, 0, 1));
  auto fused = make(tokenizer_json(
      bpe_model(tokens, json::array(), {{"unk_token", "<unk>"}, {"fuse_unk", true}})));
  ASSERT_TRUE(fused);
  EXPECT_THAT(encode(*fused, "axya"), ElementsAre(1, 0, 1));
  // Without an unk token, unknown characters are dropped (as `tokenizers` does).
  auto none = make(tokenizer_json(bpe_model(tokens, json::array())));
  ASSERT_TRUE(none);
  EXPECT_THAT(encode(*none, "axya"), ElementsAre(1, 1));
}

TEST(BpeTest, IgnoreMergesTakesWholeWordsFromTheVocab) {
  // "abc" is in the vocab but no merge builds it.
  const json merges = json{"a b"};
  auto with = make(tokenizer_json(bpe_model(kAbc, merges, {{"ignore_merges", true}})));
  auto without = make(tokenizer_json(bpe_model(kAbc, merges, {{"ignore_merges", false}})));
  ASSERT_TRUE(with && without);
  EXPECT_THAT(encode(*with, "abc"), ElementsAre(5));
  EXPECT_THAT(encode(*without, "abc"), ElementsAre(3, 2));
  EXPECT_THAT(encode(*with, "abca"), ElementsAre(3, 2, 0));  // not in the vocab: merges
}

TEST(BpeTest, ContinuingSubwordPrefixAndEndOfWordSuffix) {
  // Word-initial "a", continuation "##b", final "c</w>" and "##c</w>".
  const std::vector<std::string> tokens = {"a", "##b", "##c</w>", "ab", "abc</w>", "c</w>"};
  auto t = make(tokenizer_json(
      bpe_model(tokens, json{"a ##b", "ab ##c</w>"},
                {{"continuing_subword_prefix", "##"}, {"end_of_word_suffix", "</w>"}})));
  ASSERT_TRUE(t);
  EXPECT_THAT(encode(*t, "abc"), ElementsAre(4));
  EXPECT_THAT(encode(*t, "c"), ElementsAre(5));
  EXPECT_THAT(encode(*t, "ac"), ElementsAre(0, 2));
}

TEST(BpeTest, LoadErrors) {
  auto missing = Tokenizer::from_json(tokenizer_json(bpe_model(kAbc, json{"a x"})));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("'x'"));

  auto no_result = Tokenizer::from_json(tokenizer_json(bpe_model({"a", "b"}, json{"a b"})));
  ASSERT_FALSE(no_result.is_ok());
  EXPECT_THAT(no_result.status().message(), HasSubstr("'ab' is not in the vocab"));

  auto bad_merge = Tokenizer::from_json(tokenizer_json(bpe_model(kAbc, json{"ab"})));
  EXPECT_FALSE(bad_merge.is_ok());

  auto dropout =
      Tokenizer::from_json(tokenizer_json(bpe_model(kAbc, json::array(), {{"dropout", 0.1}})));
  ASSERT_FALSE(dropout.is_ok());
  EXPECT_EQ(dropout.status().code(), StatusCode::kUnimplemented);

  json wordpiece = tokenizer_json(bpe_model(kAbc, json::array()));
  wordpiece["model"]["type"] = "WordPiece";
  auto wp = Tokenizer::from_json(wordpiece);
  ASSERT_FALSE(wp.is_ok());
  EXPECT_EQ(wp.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(wp.status().message(), HasSubstr("WordPiece"));

  json null_flag = tokenizer_json(bpe_model(kAbc, json::array()));
  null_flag["model"]["fuse_unk"] = "yes";
  auto wrong_type = Tokenizer::from_json(null_flag);
  ASSERT_FALSE(wrong_type.is_ok());
  EXPECT_EQ(wrong_type.status().code(), StatusCode::kInvalidArgument);

  auto no_model = Tokenizer::from_json(json{{"normalizer", nullptr}});
  EXPECT_EQ(no_model.status().code(), StatusCode::kInvalidArgument);
}

TEST(BpeTest, LoadFromDirectory) {
  auto missing = Tokenizer::load("/nonexistent/model");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("tokenizer.json"));
}

TEST(BpeTest, RejectsInvalidUtf8) {
  auto t = make(tokenizer_json(bpe_model(kAbc, json{"a b"})));
  ASSERT_TRUE(t);
  for (const std::string bad : {"a\xFF", "\xC3", "a\xED\xA0\x80", "\xC0\x80", "\xF4\x90\x80\x80"}) {
    auto r = t->encode(bad);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(t->encode("").is_ok());
  EXPECT_TRUE(t->encode("").value().empty());
}

TEST(BpeTest, DecodeRejectsIdsOutsideTheVocab) {
  auto t = make(tokenizer_json(bpe_model(kAbc, json{"a b"})));
  ASSERT_TRUE(t);
  for (int32_t id : {-1, 6, 1 << 30}) {
    auto r = t->decode(std::vector<int32_t>{0, id});
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  }
  // No decoder: tokens joined with spaces, as `tokenizers` does.
  EXPECT_EQ(*t->decode(std::vector<int32_t>{3, 2}), "ab c");
  EXPECT_EQ(*t->decode(std::vector<int32_t>{}), "");
}

TEST(BpeTest, VocabularyQueries) {
  json j = tokenizer_json(bpe_model(kAbc, json{"a b"}));
  j["added_tokens"] = json::array({{{"id", 9}, {"content", "<s>"}, {"special", true}},
                                   {{"id", 7}, {"content", "xyz"}, {"special", false}}});
  auto t = make(j);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocab_size(), 10);
  EXPECT_EQ(t->token_to_id("bc"), 4);
  EXPECT_EQ(t->token_to_id("<s>"), 9);
  EXPECT_EQ(t->token_to_id("nope"), std::nullopt);
  EXPECT_EQ(t->id_to_token(5), "abc");
  EXPECT_EQ(t->id_to_token(9), "<s>");
  EXPECT_EQ(t->id_to_token(8), std::nullopt);  // a hole
  EXPECT_TRUE(t->is_special(9));
  EXPECT_FALSE(t->is_special(7));
  EXPECT_FALSE(t->is_special(0));
  EXPECT_EQ(t->decode(std::vector<int32_t>{8}).status().code(), StatusCode::kOutOfRange);
}

TEST(BpeTest, ConcurrentEncodesAgree) {
  const json pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  auto t = make(tokenizer_json(bpe_model({"a", "b", "Ġ", "ab", "Ġab"}, json{"a b", "Ġ ab"}), pre));
  ASSERT_TRUE(t);
  std::string text;
  for (int i = 0; i < 2000; ++i) text += i % 3 ? " ab" : " ba";
  const auto want = encode(*t, text);
  std::vector<std::thread> threads;
  std::vector<std::vector<int32_t>> got(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int r = 0; r < 20; ++r) got[i] = *t->encode(text, false);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

}  // namespace
}  // namespace msi

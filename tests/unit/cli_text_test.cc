// Text in, text out through the CLI: the fixtures' text and chat cases reproduce transformers'
// prompt_ids (tokenizer and chat template) and output_text (detokenizer), with `msinfer tokenize`
// and `msinfer generate --prompt/--chat`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

using msi::test::msinfer;
using msi::test::RunResult;
using msi::test::slurp;
using msi::test::TempDir;

// The strict reference of a fixture (see engine_fixture_test.cc).
json reference(const std::string& fixture) {
  const fs::path recomputed = kData / fixture / "reference-recomputed.json";
  return json::parse(slurp(fs::exists(recomputed) ? recomputed : kData / fixture / "reference.json"));
}

class TextCasesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TextCasesTest, TokenizeReproducesPromptIds) {
  const std::string model = (kData / GetParam()).string();
  TempDir tmp;
  for (const auto& c : reference(GetParam())["cases"]) {
    RunResult r;
    if (c["kind"] == "text") {
      r = msinfer({"tokenize", "--model", model, "--text", c["prompt"].get<std::string>()});
    } else {
      const fs::path chat = tmp.path() / "chat.json";
      std::ofstream(chat) << c["prompt"].dump();
      r = msinfer({"tokenize", "--model", model, "--chat", chat.string()});
    }
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ids"], c["prompt_ids"]) << c["prompt"].dump();
  }
}

TEST_P(TextCasesTest, GenerateFromTextAndChatsReproducesOutputText) {
  const std::string model = (kData / GetParam()).string();
  TempDir tmp;
  const json ref = reference(GetParam());
  std::vector<std::string> args = {"generate", "--model", model, "--max-tokens", "10"};
  json chats = json::array();
  std::vector<json> expected;  // in the CLI's order: texts, then chats
  for (const auto& c : ref["cases"]) {
    if (c["kind"] == "text") {
      args.push_back("--prompt");
      args.push_back(c["prompt"].get<std::string>());
      expected.push_back(c);
    }
  }
  for (const auto& c : ref["cases"]) {
    if (c["kind"] == "chat") {
      chats.push_back(c["prompt"]);
      expected.push_back(c);
    }
  }
  const fs::path chat_file = tmp.path() / "chats.json";
  std::ofstream(chat_file) << chats.dump();
  args.push_back("--chat");
  args.push_back(chat_file.string());
  RunResult r = msinfer(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json results = json::parse(r.out)["results"];
  ASSERT_EQ(results.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(results[i]["prompt_ids"], expected[i]["prompt_ids"]) << i;
    EXPECT_EQ(results[i]["output_ids"], expected[i]["output_ids"]) << i;
    EXPECT_EQ(results[i]["output_text"], expected[i]["output_text"]) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TextCasesTest,
                         ::testing::Values("tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(CliText, TokenizeOptionsAndErrors) {
  const std::string mixtral = (kData / "tiny-mixtral").string();
  RunResult with = msinfer({"tokenize", "--model", mixtral, "--text", "Hello"});
  RunResult without = msinfer({"tokenize", "--model", mixtral, "--text", "Hello", "--no-special"});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  json a = json::parse(with.out)["ids"], b = json::parse(without.out)["ids"];
  ASSERT_EQ(a.size(), b.size() + 1);
  EXPECT_EQ(a[0], 1);  // <s> from the post-processor
  TempDir tmp;
  RunResult r = msinfer({"tokenize", "--model", mixtral});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("exactly one of --text and --chat"));
  std::ofstream(tmp.path() / "bad.json") << "[{\"content\": \"no role\"}]";
  r = msinfer({"tokenize", "--model", mixtral, "--chat", (tmp.path() / "bad.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("needs a string \"role\""));
  // Mistral-style templates reject a conversation that does not alternate.
  std::ofstream(tmp.path() / "two_users.json") << R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])";
  std::ofstream(tmp.path() / "ok.json") << R"([{"role": "user", "content": "a"}])";
  r = msinfer({"tokenize", "--model", mixtral, "--chat", (tmp.path() / "ok.json").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A model directory without a tokenizer: --prompt is an error, --prompt-ids still works.
  const fs::path cfg_only = tmp.path() / "cfg";
  fs::create_directories(cfg_only);
  fs::copy_file(kData / "tiny-mixtral" / "config.json", cfg_only / "config.json");
  r = msinfer({"generate", "--model", cfg_only.string(), "--load-format", "dummy", "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tokenizer.json"));
  r = msinfer({"generate", "--model", cfg_only.string(), "--load-format", "dummy", "--prompt-ids", "1,2", "--max-tokens", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(json::parse(r.out)["results"][0].contains("output_text"));
}

}  // namespace

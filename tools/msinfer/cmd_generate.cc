// msinfer generate: offline generation from token ids, text or chats; prints one JSON object
// {"results": [{"prompt_ids", "output_ids", "finish_reason", "output_text"?, "logits"?}]}, one
// result per prompt: the --prompt-ids first, then the --prompt texts, then the --chat chats.
#include <charconv>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "deployment_flags.h"
#include "engine/engine.h"
#include "frontend/text_frontend.h"

namespace msi::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::vector<std::string> prompt_ids;
  std::vector<std::string> prompts;
  std::string chat_file;
  int64_t max_tokens = 16;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int64_t top_k = -1;
  int64_t seed = -1;
  bool ignore_eos = false;
  bool return_logits = false;
  std::string output;
  std::string trace;
  int64_t num_kv_blocks = 0;
  DeploymentFlags deployment;
};

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    std::string item = text.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < INT32_MIN ||
        v > INT32_MAX) {
      return error(StatusCode::kInvalidArgument, "--prompt-ids '{}': '{}' is not a token id", text, item);
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

int run_generate(const GenerateArgs& a) {
  if (a.prompt_ids.empty() && a.prompts.empty() && a.chat_file.empty()) {
    return fail("generate needs a prompt: --prompt-ids, --prompt or --chat");
  }
  if (a.temperature < 0) return fail("--temperature must be >= 0");
  if (a.top_p <= 0 || a.top_p > 1) return fail("--top-p must be in (0, 1]");
  if (a.max_tokens < 1) return fail("--max-tokens must be at least 1");

  // Prompts as token ids: given, or from text and chats through the model's tokenizer.
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& text : a.prompt_ids) {
    auto ids = parse_ids(text);
    if (!ids.is_ok()) return fail(ids.status().message());
    prompts.push_back(std::move(ids).value());
  }
  std::unique_ptr<TextFrontend> frontend;
  if (auto f = TextFrontend::load(a.model); f.is_ok()) {
    frontend = std::move(f).value();
  } else if (!a.prompts.empty() || !a.chat_file.empty()) {
    return fail(f.status().message());  // text needs the tokenizer; ids alone do not
  }
  for (const std::string& text : a.prompts) {
    auto ids = frontend->encode_text(text);
    if (!ids.is_ok()) return fail(ids.status().message());
    prompts.push_back(std::move(ids).value());
  }
  if (!a.chat_file.empty()) {
    auto chats = read_chats_file(a.chat_file);
    if (!chats.is_ok()) return fail(chats.status().message());
    for (const nlohmann::ordered_json& chat : *chats) {
      auto ids = frontend->encode_chat(chat, ChatRenderOptions{});
      if (!ids.is_ok()) return fail(ids.status().message());
      prompts.push_back(std::move(ids).value());
    }
  }

  std::vector<GenerateRequest> requests;
  for (std::vector<int32_t>& prompt : prompts) {
    GenerateRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = a.temperature;
    r.sampling.top_p = a.top_p;
    r.sampling.top_k = a.top_k;
    r.sampling.max_tokens = a.max_tokens;
    r.sampling.ignore_eos = a.ignore_eos;
    if (a.seed >= 0) {
      r.sampling.seed = static_cast<uint64_t>(a.seed);
      r.sampling.has_seed = true;
    }
    r.return_logits = a.return_logits;
    requests.push_back(std::move(r));
  }

  auto options = engine_options_from_flags(a.deployment);
  if (!options.is_ok()) return fail(options.status().message());
  EngineOptions opt = std::move(options).value();
  opt.record_timeline = !a.trace.empty();
  // KV capacity per attention worker: as given, or enough for every request to run to completion.
  if (a.num_kv_blocks > 0) {
    opt.kv_n_blocks = a.num_kv_blocks;
  } else {
    auto cfg = load_model_config(a.model, opt.hf_overrides.is_null() ? nullptr : &opt.hf_overrides);
    if (!cfg.is_ok()) return fail(cfg.status().message());
    const int64_t max_len = opt.max_model_len > 0 ? opt.max_model_len : cfg->max_position_embeddings;
    opt.kv_n_blocks = kv_blocks_needed(requests, max_len, opt.kv_block_size);
  }

  EngineRunOptions run_options;
  run_options.trace_path = a.trace;
  auto engine = Engine::create(a.model, opt, run_options);
  if (!engine.is_ok()) return fail(engine.status().message());
  Result<std::vector<GenerateResult>> results = (*engine)->generate(requests);
  if (!results.is_ok()) return fail(results.status().message());
  if (Status st = (*engine)->shutdown(); !st.is_ok()) return fail(st.message());  // writes the trace
  if (!results.is_ok()) return fail(results.status().message());

  nlohmann::json out = {{"results", nlohmann::json::array()}};
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateResult& r = (*results)[i];
    nlohmann::json j = {{"prompt_ids", requests[i].prompt},
                        {"output_ids", r.output_ids},
                        {"finish_reason", r.finish_reason}};
    if (frontend) {
      auto text = frontend->decode_output(r.output_ids);
      if (!text.is_ok()) return fail(text.status().message());
      j["output_text"] = *text;
    }
    if (a.return_logits) j["logits"] = r.logits;
    out["results"].push_back(std::move(j));
  }
  const std::string text = out.dump() + "\n";
  if (a.output.empty()) {
    std::cout << text << std::flush;
    if (!std::cout) return fail("cannot write the results to stdout");
  } else {
    std::ofstream f(a.output, std::ios::binary);
    f << text;
    if (!f) return fail("cannot write " + a.output);
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate from token-id prompts; prints JSON");
  cmd->add_option("--model", a->model, "Hugging Face model directory")->required();
  cmd->add_option("--prompt-ids", a->prompt_ids, "Comma-separated token ids (repeatable; one batch)");
  cmd->add_option("--prompt", a->prompts, "Prompt text, tokenized with the model's tokenizer (repeatable)");
  cmd->add_option("--chat", a->chat_file,
                  "JSON file: an OpenAI messages list, or a list of them, rendered with the chat template");
  cmd->add_option("--max-tokens", a->max_tokens, "Tokens to generate per prompt")->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "Top-k sampling (-1 = off)")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Sampling seed (-1 = random)")->capture_default_str();
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at EOS");
  cmd->add_flag("--return-logits", a->return_logits, "Include each step's logits in the output");
  cmd->add_option("--output", a->output, "Write the JSON here instead of stdout");
  cmd->add_option("--trace", a->trace, "Write the workers' timeline as Chrome trace JSON");
  cmd->add_option("--num-kv-blocks", a->num_kv_blocks, "KV cache blocks per attention worker (0 = enough for the batch)")
      ->capture_default_str();
  add_deployment_flags(cmd, a->deployment);
  cmd->callback([&run, a] { run = [a] { return run_generate(*a); }; });
}

}  // namespace msi::cli

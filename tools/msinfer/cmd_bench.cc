// msinfer bench serve: benchmarks a running OpenAI-compatible server like `vllm bench serve`
// (see bench/serve_bench.h). Prints a table, or with --json the result object, on stdout; the
// progress line goes to stderr. Exits 1 when the run cannot start (bad flag, server down) or
// when every request failed.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "bench/serve_bench.h"
#include "commands.h"

namespace msi::cli {
namespace {

struct BenchServeArgs {
  bench::ServeBenchConfig config;
  std::string request_rate = "inf";
  bool json = false;
  bool no_progress = false;
  std::string result_file;
};

int run_bench_serve(BenchServeArgs a) {
  char* end = nullptr;
  a.config.request_rate = std::strtod(a.request_rate.c_str(), &end);
  if (a.request_rate.empty() || end == nullptr || *end != '\0') {
    return fail("--request-rate must be a number of requests per second or inf, got '" +
                a.request_rate + "'");
  }
  a.config.progress = !a.no_progress;
  auto result = bench::run_serve_bench(a.config);
  if (!result.is_ok()) return fail(result.status().message());

  const nlohmann::json j = result->to_json();
  if (!a.result_file.empty()) {
    std::ofstream out(a.result_file);
    out << j.dump(2) << "\n";
    if (!out) return fail("cannot write " + a.result_file);
  }
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << result->to_table();
  }
  std::cout << std::flush;
  if (!std::cout) return fail("cannot write to stdout");
  if (result->metrics.completed == 0) {
    std::string first_error;
    for (const auto& o : result->outputs) {
      if (!o.error.empty()) {
        first_error = o.error;
        break;
      }
    }
    return fail("all " + std::to_string(result->outputs.size()) +
                " requests failed; the first: " + first_error);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, RunFn& run) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  auto a = std::make_shared<BenchServeArgs>();
  bench::ServeBenchConfig& c = a->config;
  CLI::App* cmd = bench->add_subcommand(
      "serve", "Benchmark a running OpenAI-compatible server (like vllm bench serve)");
  cmd->add_option("--host", c.host, "Server host")->capture_default_str();
  cmd->add_option("--port", c.port, "Server port")->capture_default_str();
  cmd->add_option("--model", c.model, "Model name (default: the first of GET /v1/models)");
  cmd->add_option("--endpoint", c.endpoint, "/v1/completions or /v1/chat/completions")
      ->capture_default_str();
  cmd->add_option("--dataset-name", c.dataset_name,
                  "random (completions: random token ids; chat: random common words) or "
                  "sharegpt")
      ->capture_default_str();
  cmd->add_option("--dataset-path", c.dataset_path, "ShareGPT JSON file (for sharegpt)");
  cmd->add_option("--num-prompts", c.n_prompts, "Number of requests")->capture_default_str();
  cmd->add_option("--random-input-len", c.random_input_len, "Random dataset: prompt tokens")
      ->capture_default_str();
  cmd->add_option("--random-output-len", c.random_output_len, "Random dataset: max_tokens")
      ->capture_default_str();
  cmd->add_option("--random-range-ratio", c.random_range_ratio,
                  "Random dataset: lengths drawn from [len*(1-r), len*(1+r)], 0 <= r < 1")
      ->capture_default_str();
  cmd->add_option("--random-vocab-size", c.random_vocab_size,
                  "Random dataset: token ids drawn from [0, N); at most the model's vocabulary")
      ->capture_default_str();
  cmd->add_option("--request-rate", a->request_rate,
                  "Requests per second (Poisson arrivals), or inf to send all at once")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", c.max_concurrency,
                  "Most requests in flight at once (0: unlimited)")
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "Seed of the dataset and the arrivals")->capture_default_str();
  cmd->add_flag("--ignore-eos", c.ignore_eos, "Ask the server to ignore EOS (ignore_eos: true)");
  cmd->add_option("--timeout", c.timeout_s, "Seconds each request (and each call) may take")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the result as JSON instead of a table");
  cmd->add_option("--result-file", a->result_file, "Also write the result JSON to this file");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line on stderr");
  cmd->callback([&run, a] { run = [a] { return run_bench_serve(*a); }; });
}

}  // namespace msi::cli

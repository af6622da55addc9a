// msinfer bench: the offline decode benchmark on one device (bench/offline_bench.h), and
// msinfer bench serve, which benchmarks a running OpenAI-compatible server like `vllm bench serve`
// (bench/serve_bench.h), and msinfer bench m2n, GPU M2N round trips over NVLink peer stores, the
// copy engine and NCCL (bench/m2n_bench.h). Each prints a table, or with --json the result object, on stdout; the
// progress line goes to stderr. bench serve exits 1 when the run cannot start (bad flag, server
// down) or when every request failed; bench when the model cannot run.
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "bench/m2n_bench.h"
#include "bench/offline_bench.h"
#include "bench/serve_bench.h"
#include "commands.h"
#include "deployment_flags.h"

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

struct BenchOfflineArgs {
  bench::OfflineBenchConfig config;
  std::string model;
  std::string hf_overrides;
  std::string prefill = "synthetic";
  std::string attention_devices, expert_devices;
  bool json = false;
  bool no_progress = false;
  std::string result_file;
};

int run_bench_offline(BenchOfflineArgs a) {
  if (a.model.empty()) return fail("--model is required (a checkpoint, or a directory with config.json)");
  a.config.model_dir = a.model;
  if (!a.hf_overrides.empty()) {
    a.config.engine.hf_overrides = nlohmann::json::parse(a.hf_overrides, nullptr, false);
    if (a.config.engine.hf_overrides.is_discarded() || !a.config.engine.hf_overrides.is_object()) {
      return fail("--hf-overrides must be a JSON object");
    }
  }
  if (a.prefill != "synthetic" && a.prefill != "real") return fail("--prefill must be synthetic or real");
  if (!a.expert_devices.empty()) a.config.engine.expert_devices = split_device_list(a.expert_devices);
  if (!a.attention_devices.empty()) a.config.engine.attention_devices = split_device_list(a.attention_devices);
  if (!a.config.engine.attention_devices.empty()) a.config.engine.device = a.config.engine.attention_devices.front();
  a.config.real_prefill = a.prefill == "real";
  a.config.progress = !a.no_progress;
  auto result = bench::run_offline_bench(a.config);
  if (!result.is_ok()) return fail(result.status().message());
  if (!a.result_file.empty()) {
    std::ofstream out(a.result_file);
    out << result->dump(2) << "\n";
    if (!out) return fail("cannot write " + a.result_file);
  }
  std::cout << (a.json ? result->dump(2) + "\n" : bench::offline_bench_table(*result)) << std::flush;
  if (!std::cout) return fail("cannot write to stdout");
  return 0;
}

struct BenchM2NArgs {
  bench::M2NBenchConfig config;
  std::string devices = "0,1";
  std::string sizes;
  bool no_decode = false;
  bool json = false;
  bool no_progress = false;
  std::string result_file;
};

int run_bench_m2n(BenchM2NArgs a) {
  bench::M2NBenchConfig& c = a.config;
  if (std::sscanf(a.devices.c_str(), "%d,%d", &c.send_device, &c.recv_device) != 2) {
    return fail("--devices must be two device indices, SEND,RECV (e.g. 0,1), got '" + a.devices + "'");
  }
  if (!a.sizes.empty()) {
    auto sizes = bench::parse_byte_sizes(a.sizes);
    if (!sizes.is_ok()) return fail("--sizes: " + sizes.status().message());
    c.sizes = *sizes;
  }
  if (a.no_decode) c.decode_tokens.clear();
  c.progress = !a.no_progress;
  auto result = bench::run_m2n_bench(c);
  if (!result.is_ok()) return fail(result.status().message());
  if (!a.result_file.empty()) {
    std::ofstream out(a.result_file);
    out << result->dump(2) << "\n";
    if (!out) return fail("cannot write " + a.result_file);
  }
  std::cout << (a.json ? result->dump(2) + "\n" : bench::m2n_bench_table(*result)) << std::flush;
  if (!std::cout) return fail("cannot write to stdout");
  return 0;
}

void add_m2n_command(CLI::App* bench, RunFn& run) {
  auto a = std::make_shared<BenchM2NArgs>();
  bench::M2NBenchConfig& c = a->config;
  CLI::App* cmd = bench->add_subcommand(
      "m2n", "GPU M2N dispatch+combine round trips: NVLink peer stores, copy engine, NCCL");
  cmd->add_option("--devices", a->devices, "SEND,RECV devices (senders on the first)")->capture_default_str();
  cmd->add_option("--senders", c.n_senders, "Senders (M), all on the send device")->capture_default_str();
  cmd->add_option("--receivers", c.n_receivers, "Receivers (N), all on the receive device")->capture_default_str();
  cmd->add_option("--sizes", a->sizes, "Bytes per pair, comma-separated, e.g. 4K,256K,8M (default 4K..8M, powers of 2)");
  cmd->add_option("--decode-tokens", c.decode_tokens, "Decode shapes: tokens per sender")->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--decode-hidden", c.decode_hidden, "Decode shapes: hidden sizes")->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--decode-topk", c.decode_topk, "Decode shapes: experts per token")->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--no-decode", a->no_decode, "Only the --sizes messages, no decode shapes");
  cmd->add_option("--transports", c.transports, "p2p, ce, nccl")->delimiter(',')->capture_default_str();
  cmd->add_option("--warmup", c.warmup, "Untimed rounds per message size")->capture_default_str();
  cmd->add_option("--iters", c.iters, "Timed rounds per message size")->capture_default_str();
  cmd->add_option("--timeout-ms", c.timeout_ms, "Longest wait for a peer's flag before the round fails")
      ->capture_default_str();
  cmd->add_option("--p2p-blocks", c.p2p_blocks_per_pair, "Most thread blocks per pair in the P2P copy kernels")
      ->capture_default_str();
  cmd->add_option("--link-gbps", c.link_gbps, "Link rate per direction for the floor, GB/s")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the result as JSON instead of a table");
  cmd->add_option("--result-file", a->result_file, "Also write the result JSON to this file");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line on stderr");
  cmd->callback([&run, a] { run = [a] { return run_bench_m2n(*a); }; });
}

void add_offline_flags(CLI::App* bench, BenchOfflineArgs& a) {
  bench::OfflineBenchConfig& c = a.config;
  bench->add_option("--model", a.model, "Checkpoint directory (or any directory with config.json, for dummy weights)");
  bench->add_option("--load-format", c.engine.load_format, "auto | dummy")->capture_default_str();
  bench->add_option("--device", c.engine.device, "cpu | cuda:N")->capture_default_str();
  bench->add_option("--hf-overrides", a.hf_overrides, "JSON merged over config.json, e.g. {\"num_hidden_layers\": 8}");
  bench->add_option("--batch-size", c.batch_size, "Sequences decoded together")->capture_default_str();
  bench->add_option("--input-len", c.input_len, "Context tokens of each sequence before decoding")->capture_default_str();
  bench->add_option("--output-len", c.output_len, "Decode steps")->capture_default_str();
  bench->add_option("--warmup-steps", c.warmup_steps, "Decode steps left out of the statistics")->capture_default_str();
  bench->add_option("--profile-steps", c.profile_steps, "Last decode steps timed per stage (device marks)")
      ->capture_default_str();
  bench->add_option("--prefill", a.prefill,
                    "synthetic: KV blocks counted as cached without computing them; real: a chunked prefill")
      ->capture_default_str();
  bench->add_option("--micro-batches", c.engine.n_micro_batches, "Micro-batches per step (m)")->capture_default_str();
  bench->add_option("--attention-devices", a.attention_devices, "With --expert-devices: the attention worker's device");
  bench->add_option("--expert-devices", a.expert_devices,
                    "Disaggregated: expert workers on these devices, comma-separated (e.g. cuda:1)");
  bench->add_option("--max-num-batched-tokens", c.engine.max_batched_tokens, "Tokens per prefill step")
      ->capture_default_str();
  bench->add_option("--kv-block-size", c.engine.kv_block_size, "Tokens per KV block")->capture_default_str();
  bench->add_option("--seed", c.seed, "Seed of the random tokens")->capture_default_str();
  bench->add_flag("--enforce-eager", c.engine.enforce_eager, "Time the decode steps op by op, not as CUDA graphs");
  bench->add_flag("--json", a.json, "Print the result as JSON instead of a table");
  bench->add_option("--result-file", a.result_file, "Also write the result JSON to this file");
  bench->add_flag("--no-progress", a.no_progress, "No progress line on stderr");
}

}  // namespace

void add_bench_command(CLI::App& app, RunFn& run) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Offline decode benchmark on one device (or `bench serve` for a running server)");
  bench->require_subcommand(0, 1);
  auto offline = std::make_shared<BenchOfflineArgs>();
  add_offline_flags(bench, *offline);
  bench->callback([&run, bench, offline] {
    if (bench->get_subcommands().empty()) run = [offline] { return run_bench_offline(*offline); };
  });
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
  add_m2n_command(bench, run);
}

}  // namespace msi::cli

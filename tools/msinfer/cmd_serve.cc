// msinfer serve: the OpenAI-compatible HTTP server over a deployment (vLLM's flags where they
// exist). SIGINT/SIGTERM: stop accepting, abort what is in flight, stop the workers, exit 0.
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "deployment_flags.h"
#include "frontend/text_frontend.h"
#include "metrics/registry.h"
#include "metrics/serving_metrics.h"
#include "serving/api_server.h"
#include "serving/async_engine.h"

namespace msi::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name;
  std::string api_key;
  DeploymentFlags deployment;
  int64_t kv_cache_tokens = 65536;
  int64_t max_concurrent_requests = 0;
  bool reject_when_full = false;
  double queue_timeout_s = 60;
  int64_t max_body_mb = 32;
  int http_threads = 0;
  std::string trace;
};

// SIGINT/SIGTERM write a byte to this pipe (async-signal-safe); a thread reads it and stops the
// server. (Blocking the signals instead would not do: BLAS starts threads before main.)
int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  g_signal = sig;
  const char b = 1;
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &b, 1);
}

int run_serve(const ServeArgs& a) {
  if (::pipe(g_signal_pipe) != 0) return fail("cannot create the signal pipe");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  auto options = engine_options_from_flags(a.deployment);
  if (!options.is_ok()) return fail(options.status().message());
  EngineOptions opt = std::move(options).value();
  opt.kv_n_blocks = (a.kv_cache_tokens + opt.kv_block_size - 1) / opt.kv_block_size;
  opt.record_timeline = !a.trace.empty();

  auto frontend = TextFrontend::load(a.model);
  if (!frontend.is_ok()) return fail(frontend.status().message());
  const std::string name = a.served_model_name.empty() ? std::filesystem::path(a.model).filename().string()
                                                       : a.served_model_name;
  metrics::Registry registry;
  metrics::ServingMetrics serving_metrics(registry, name);
  AsyncEngineLimits limits;
  limits.max_num_requests = a.max_concurrent_requests;
  limits.reject_when_full = a.reject_when_full;
  limits.queue_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.queue_timeout_s * 1000));
  EngineRunOptions run;
  run.trace_path = a.trace;
  auto engine = AsyncEngine::create(a.model, opt, run, **frontend, &serving_metrics, limits);
  if (!engine.is_ok()) return fail(engine.status().message());

  ApiServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.served_model_name = name;
  so.model_root = a.model;
  so.api_key = a.api_key;
  so.max_body_bytes = static_cast<size_t>(a.max_body_mb) << 20;
  so.n_http_threads = a.http_threads > 0 ? a.http_threads
                                         : static_cast<int>(std::max<int64_t>(64, 2 * opt.max_seqs)) + 8;
  ApiServer server(**engine, **frontend, registry, so);
  if (Status st = server.bind(); !st.is_ok()) return fail(st.message());
  std::fprintf(stderr, "msinfer: serving %s on http://%s:%d (%d attention x %d expert workers, %d micro-batches, %s)\n",
               name.c_str(), a.host.c_str(), server.port(), opt.n_attention_workers, opt.n_expert_workers,
               opt.n_micro_batches, opt.transport.c_str());
  std::fflush(stderr);

  std::thread signal_thread([&] {
    char b = 0;
    while (::read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
    }
    if (g_signal != 0) {
      std::fprintf(stderr, "msinfer: %s: shutting down\n", g_signal == SIGINT ? "SIGINT" : "SIGTERM");
    }
    server.stop();
  });
  Status served = server.serve();
  // Stopped by a signal, or the server failed: either way, wake the signal thread and end.
  const char b = 0;
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &b, 1);
  signal_thread.join();
  Status stopped = (*engine)->shutdown();
  if (!served.is_ok()) return fail(served.message());
  if (!stopped.is_ok()) return fail(stopped.message());
  std::fprintf(stderr, "msinfer: stopped\n");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
  cmd->add_option("--model", a->model, "Hugging Face model directory")->required();
  cmd->add_option("--host", a->host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--served-model-name", a->served_model_name, "Model name in the API (default: the directory name)");
  cmd->add_option("--api-key", a->api_key, "Require Authorization: Bearer <key> on /v1");
  add_deployment_flags(cmd, a->deployment);
  cmd->add_option("--kv-cache-tokens", a->kv_cache_tokens, "KV cache capacity per attention worker, in tokens")
      ->capture_default_str();
  cmd->add_option("--max-concurrent-requests", a->max_concurrent_requests,
                  "Requests in flight at once (0: no limit); beyond it requests queue or get 503")
      ->capture_default_str();
  cmd->add_flag("--reject-when-full", a->reject_when_full, "At the limit, answer 503 at once instead of queueing");
  cmd->add_option("--queue-timeout", a->queue_timeout_s, "Seconds a queued request waits for a slot")->capture_default_str();
  cmd->add_option("--max-body-mb", a->max_body_mb, "Largest request body, MiB")->capture_default_str();
  cmd->add_option("--http-threads", a->http_threads, "HTTP worker threads (0: 2 x max-num-seqs + 8, at least 72)");
  cmd->add_option("--trace", a->trace, "Write the workers' timelines as Chrome trace JSON at shutdown");
  cmd->callback([&run, a] { run = [a] { return run_serve(*a); }; });
}

}  // namespace msi::cli

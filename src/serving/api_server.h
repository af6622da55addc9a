// ApiServer: the OpenAI-compatible HTTP front of a deployment (cpp-httplib).
//   POST /v1/completions, POST /v1/chat/completions (JSON or Server-Sent Events with `stream`),
//   GET /v1/models, GET /health, GET /metrics (Prometheus, vLLM's names, plus
//   msinfer:expert_tokens_total), POST /tokenize, POST /detokenize (vLLM's shapes),
//   GET /expert_load and POST /expert_load/reset (expert-load window, engine/expert_load.h).
// Bad input is a 4xx with an OpenAI-shaped error object; the server keeps serving. A client that
// disconnects mid-stream has its request aborted at once (its KV blocks freed).
//
// Thread-safe: handlers run on the HTTP thread pool; the engine does the rest.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/status.h"
#include "frontend/text_frontend.h"
#include "metrics/registry.h"
#include "serving/async_engine.h"

namespace msi {

class HttpServer;

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                // 0: any free port (see port())
  std::string served_model_name;  // what requests put in "model"
  std::string model_root;         // shown in /v1/models
  std::string api_key;            // empty: no authentication
  size_t max_body_bytes = 32 << 20;
  int n_http_threads = 128;       // concurrent connections served at once
};

class ApiServer {
 public:
  ApiServer(AsyncEngine& engine, const TextFrontend& frontend, metrics::Registry& registry,
            ApiServerOptions options);
  ~ApiServer();

  // Binds the socket (the port is known after this). InvalidArgument/Unavailable if it cannot.
  Status bind();
  // Serves until stop(). Blocks.
  Status serve();
  // Stops accepting and returns serve(); in-flight handlers finish. Thread-safe, idempotent.
  void stop();
  int port() const { return port_; }

 private:
  void install_routes();

  AsyncEngine& engine_;
  const TextFrontend& frontend_;
  metrics::Registry& registry_;
  ApiServerOptions options_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  int64_t created_ = 0;
};

}  // namespace msi

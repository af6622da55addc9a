// AsyncEngine: the serving side of a deployment. Requests come in from many HTTP threads; each
// gets a RequestHandle that streams its output as text deltas (incremental detokenization that
// never splits a UTF-8 character; stop strings cut out and ending the request), with per-token
// logprobs, finish reason and token counts. It routes each request to the attention worker with
// the fewest requests in flight, records vLLM's metrics, and aborts a request at once (freeing
// its KV blocks) when its client goes away.
//
// Thread-safe. Reports are processed on the deployment's threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/deployment.h"
#include "engine/engine.h"
#include "engine/engine_options.h"
#include "engine/expert_load.h"
#include "frontend/text_frontend.h"
#include "metrics/serving_metrics.h"

namespace msi {

struct ServeRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;  // max_tokens must be set (the API layer fills the default)
  std::vector<std::string> stop;        // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids;  // (vLLM extension) stop at these tokens
  int64_t min_tokens = 0;
  int64_t n_logprobs = -1;              // ≥ 0: logprobs of each token and this many alternatives
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

// What a request produced since the last read.
struct StreamDelta {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<TokenLogprob> logprobs;  // one per token of token_ids (when asked for)
  bool finished = false;
  std::string finish_reason;  // "stop" | "length" | "abort" when finished
  std::string stop_string;    // the stop string that ended it, if one did
  int32_t stop_token = -1;    // the stop token id (EOS or stop_token_ids) that ended it, if any
  int64_t n_prompt_tokens = 0;
  int64_t n_output_tokens = 0;  // so far
};

class AsyncEngine;

class RequestHandle {
 public:
  int64_t id() const { return id_; }
  // Waits up to `timeout` for output; returns what accumulated (possibly several tokens).
  // DeadlineExceeded if nothing came; Unavailable if the deployment failed.
  Result<StreamDelta> next(std::chrono::milliseconds timeout);
  // The client is gone: abort the request (idempotent).
  void cancel();

 private:
  friend class AsyncEngine;
  RequestHandle(AsyncEngine* engine, int64_t id, int worker) : engine_(engine), id_(id), worker_(worker) {}
  AsyncEngine* engine_;
  int64_t id_;
  int worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  StreamDelta pending_;
  bool has_pending_ = false;
  bool done_ = false;     // the final delta was queued
  bool taken_done_ = false;
  Status failure_;
};

struct AsyncEngineLimits {
  int64_t max_num_requests = 0;   // requests in flight at once (0: no limit)
  bool reject_when_full = false;  // full: 503 at once (true) or wait up to queue_timeout (false)
  std::chrono::milliseconds queue_timeout{60000};
};

class AsyncEngine {
 public:
  static Result<std::unique_ptr<AsyncEngine>> create(const std::filesystem::path& model_dir,
                                                     const EngineOptions& options, const EngineRunOptions& run,
                                                     const TextFrontend& frontend, metrics::ServingMetrics* metrics,
                                                     const AsyncEngineLimits& limits);
  ~AsyncEngine();

  const ModelConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }

  // Submits a validated request (prompt within max_model_len, ids in the vocabulary).
  // ResourceExhausted when full and rejecting (or the wait timed out); Unavailable after a
  // failure or shutdown.
  Result<std::shared_ptr<RequestHandle>> submit(ServeRequest request);

  // Aborts every request in flight and stops the workers.
  Status shutdown();
  Status health() const;
  int64_t n_in_flight() const;

  // Expert-load statistics (engine/expert_load.h): the current window — since start or the last
  // reset — in the bench's "expert_load" shape; with `reset` that window is returned and a new one
  // starts. Counts lag the workers by up to a second while they are busy.
  nlohmann::json expert_load_window(bool reset);
  // A copy of the tally: totals since start per layer and expert (the /metrics counters).
  ExpertLoadWindow expert_load() const;

 private:
  friend class RequestHandle;
  struct Live;
  AsyncEngine() = default;
  void on_report(int worker, const WorkerReport& report);
  void on_failure(const Status& status);
  void finish_locked(int64_t id);
  void cancel(RequestHandle& handle);

  ModelConfig config_;
  int64_t max_model_len_ = 0;
  const TextFrontend* frontend_ = nullptr;
  metrics::ServingMetrics* metrics_ = nullptr;
  AsyncEngineLimits limits_;
  std::unique_ptr<Deployment> deployment_;

  mutable std::mutex mu_;
  std::condition_variable slot_cv_;
  std::unordered_map<int64_t, std::unique_ptr<Live>> live_;
  std::vector<int64_t> in_flight_per_worker_;
  std::vector<WorkerStats> worker_stats_;
  ExpertLoadWindow expert_load_;
  int64_t next_id_ = 0;
  Status failure_;
  bool shut_down_ = false;
};

}  // namespace msi

// Engine: offline generation over a Deployment (engine/deployment.h) — threads of this process
// (`transport` inproc) or supervised worker processes (shm). The deployment stays up between
// generate() calls and ends with shutdown() or the Engine.
//
// There is exactly one forward path: attention-side layers hand routed tokens to expert workers
// through the M2N library, whatever the placement. Thread-safe: generate() may be called from
// several threads.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/deployment.h"
#include "engine/engine_options.h"
#include "engine/expert_load.h"
#include "engine/generate_types.h"

namespace msi {

struct EngineRunOptions {
  std::filesystem::path trace_path;                   // Chrome trace written at shutdown
  std::filesystem::path self_exe = "/proc/self/exe";  // the msinfer binary (process workers)
};

class Engine {
 public:
  // NOTE: with transport shm, call from the thread that will outlive the engine (the main
  // thread): worker processes are tied to the creating thread's life (PR_SET_PDEATHSIG).
  static Result<std::unique_ptr<Engine>> create(const std::filesystem::path& model_dir,
                                                const EngineOptions& options,
                                                const EngineRunOptions& run_options = {});
  ~Engine();

  const ModelConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }
  // KV blocks in use over all attention workers, as last reported.
  int64_t kv_blocks_in_use() const;
  // Expert-load statistics since the engine started (engine/expert_load.h: routed tokens per
  // layer and expert, the shape `msinfer bench --json` writes under "expert_load", plus
  // "window_seconds"). Exact once the workers are idle — e.g. after shutdown(); while they are
  // busy, up to a second behind.
  nlohmann::json expert_load_json() const;

  // Validates every request, spreads them over the attention workers (each to the one with the
  // fewest prompt tokens so far), and waits until all are done. A failing worker fails the call
  // with its error (and the engine stays failed).
  Result<std::vector<GenerateResult>> generate(const std::vector<GenerateRequest>& requests);

  // Stops the workers gracefully (and writes the trace). Later generate() calls fail.
  Status shutdown();

 private:
  Engine() = default;
  void on_report(int worker, const WorkerReport& report);

  ModelConfig config_;
  EngineOptions options_;
  int64_t max_model_len_ = 0;
  std::unique_ptr<Deployment> deployment_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    GenerateResult* result;
    bool done = false;
  };
  std::map<int64_t, Pending> pending_;
  std::vector<int64_t> kv_used_;  // per attention worker
  ExpertLoadWindow expert_load_;
  Status failure_;
  int64_t next_id_ = 0;
  bool shut_down_ = false;
};

// Assigns each request to the attention worker with the fewest prompt tokens so far (ties: the
// lowest index). Returns the worker of each request.
std::vector<int> assign_requests(const std::vector<GenerateRequest>& requests, int n_workers);

}  // namespace msi

// Deployment: a running set of M attention workers and N expert workers serving requests until
// it is shut down — as threads of this process (M2N inproc) or as supervised worker processes
// (M2N over shared memory). The frontend (offline Engine, HTTP server) submits requests to an
// attention worker and gets every worker's reports (new tokens, finished requests, load) on a
// callback, called from a deployment thread.
//
// A worker that fails — an error, a crash, a killed process — fails the deployment: the failure
// callback gets the error naming the worker, the other workers are stopped, and later calls
// return that error. Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "engine/engine_options.h"
#include "engine/worker_channel.h"
#include "engine/worker_channel_inproc.h"

namespace msi {

using FailureCallback = std::function<void(const Status& status)>;

class Deployment {
 public:
  virtual ~Deployment() = default;  // stops the workers (after a shutdown(), or by force)

  virtual int n_attention_workers() const = 0;
  // Adds a request to attention worker `worker` and wakes every other worker (they step in
  // lockstep). Ids must be unique over the deployment's life.
  Status submit(int worker, SchedRequest request);
  // Aborts a request on its worker; its KV blocks are freed at once.
  Status abort(int worker, int64_t id);

  // Graceful end: every worker finishes its requests, then all stop; waits up to `timeout`
  // (then stops them by force and fails). Writes the trace if one was asked for.
  virtual Status shutdown(std::chrono::milliseconds timeout) = 0;
  // OK while every worker is healthy.
  virtual Status failure() const = 0;

 protected:
  virtual Status post(int worker, WorkerEvent event) = 0;
};

struct DeploymentCallbacks {
  ReportCallback on_report;
  FailureCallback on_failure;
};

// Threads of this process. `trace_path` (may be empty): Chrome trace written at shutdown.
Result<std::unique_ptr<Deployment>> start_thread_deployment(const std::filesystem::path& model_dir,
                                                            const EngineOptions& options,
                                                            DeploymentCallbacks callbacks,
                                                            const std::filesystem::path& trace_path);

// One process per worker (`self_exe worker ...`), supervised by a thread of this process.
Result<std::unique_ptr<Deployment>> start_process_deployment(const std::filesystem::path& model_dir,
                                                             const EngineOptions& options,
                                                             DeploymentCallbacks callbacks,
                                                             const std::filesystem::path& trace_path,
                                                             const std::filesystem::path& self_exe);

}  // namespace msi

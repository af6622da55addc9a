// The channel between a deployment's frontend (whoever submits requests) and one attention
// worker: events in (add a request, abort one, wake up, shut down), reports out (new tokens,
// finished requests, load statistics). Two implementations: in-process queues (threads) and
// JSON lines over pipes (worker processes), in engine/worker_channel_*.{h,cc}.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "sched/scheduler.h"

namespace msi {

struct WorkerEvent {
  enum class Kind { kAdd, kAbort, kWake, kShutdown };
  Kind kind = Kind::kWake;
  SchedRequest request;  // kAdd
  int64_t id = 0;        // kAbort
};

// An attention worker's load, reported after every step.
struct WorkerStats {
  int64_t n_running = 0;
  int64_t n_waiting = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  int64_t n_preemptions = 0;  // so far
};

struct WorkerReport {
  std::vector<SeqOutput> outputs;
  WorkerStats stats;
  // Expert load (AttentionWorker::take_expert_counts): routed (token, expert) pairs per layer and
  // global expert id, [n_layers * n_experts] layer-major, counted since the previous report that
  // carried them, over `expert_steps` steps with tokens. Empty when not sent (at most once a
  // second, and when the worker falls idle or stops).
  std::vector<int64_t> expert_tokens;
  int64_t expert_steps = 0;
};

// The worker's end: it polls for events between steps and waits for them when idle.
class WorkerInbox {
 public:
  virtual ~WorkerInbox() = default;
  // Appends every pending event without blocking. An error means the frontend is gone.
  virtual Status poll(std::vector<WorkerEvent>& out) = 0;
  // Blocks until an event is pending or `timeout` passes (both OK).
  virtual Status wait(std::chrono::milliseconds timeout) = 0;
};

class WorkerOutbox {
 public:
  virtual ~WorkerOutbox() = default;
  virtual Status emit(const WorkerReport& report) = 0;
};

// JSON forms (pipes between processes).
nlohmann::json event_to_json(const WorkerEvent& e);
Result<WorkerEvent> event_from_json(const nlohmann::json& j);
nlohmann::json report_to_json(const WorkerReport& r);
Result<WorkerReport> report_from_json(const nlohmann::json& j);

}  // namespace msi

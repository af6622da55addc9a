// ExpertLoadWindow: a frontend's tally of the expert-load counts its attention workers report
// (WorkerReport::expert_tokens): routed (token, expert) pairs per layer and global expert id,
// counted on the attention side, so the same in every deployment (colocated experts, expert
// workers on threads or processes, the GPU peer transport). It keeps the totals since start (the
// server's msinfer:expert_tokens_total counters) and a window since start or the last reset, in the
// shape `msinfer bench --json` writes under "expert_load" and `msinfer plan --expert-load` reads:
//
//   {"window_steps": S, "window_seconds": T, "n_experts": E,
//    "tokens_per_expert": [[layer 0: E counts], [] (a dense layer), ...]}
//
// window_steps is the most steps with tokens any one attention worker ran in the window (the
// workers step in lockstep). Counts arrive at most a second late while the workers are busy, and
// are exact once they are idle or stopped (attention_runner.cc).
//
// Owns values only; thread-compatible (its owner locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/worker_channel.h"
#include "model/config.h"

namespace msi {

class ExpertLoadWindow {
 public:
  ExpertLoadWindow() = default;
  ExpertLoadWindow(const ModelConfig& config, int n_attention_workers);

  int64_t n_layers() const { return static_cast<int64_t>(moe_layer_.size()); }
  int64_t n_experts() const { return n_experts_; }
  bool is_moe_layer(int64_t layer) const { return moe_layer_[static_cast<size_t>(layer)]; }

  // Adds a report's counts (none: nothing). Requires its expert_tokens to be empty or
  // [n_layers * n_experts] (checked: the workers run the same model) and 0 <= worker < M.
  void add(int worker, const WorkerReport& report);

  // The totals since start, [n_layers * n_experts] layer-major (dense layers: zeros).
  const std::vector<int64_t>& totals() const { return totals_; }
  // The current window in the shape above.
  nlohmann::json window_json() const;
  // Ends the current window: returns it (window_json()) and starts a new, empty one.
  nlohmann::json reset();

 private:
  std::vector<bool> moe_layer_;
  int64_t n_experts_ = 0;
  std::vector<int64_t> totals_, window_;  // [n_layers * n_experts]
  std::vector<int64_t> window_steps_;     // [M] steps with tokens per attention worker
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
};

}  // namespace msi

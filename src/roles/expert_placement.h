// ExpertPlacement: which expert worker holds which routed experts (the same for every MoE layer).
// An expert may have several replicas (on different workers); a token routed to a replicated
// expert goes to one replica, chosen deterministically from the token's index so that the load is
// split evenly. Plans are JSON files that round-trip (to_json / from_json).
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi {

class ExpertPlacement {
 public:
  ExpertPlacement() = default;
  // Experts split into contiguous ranges, as even as possible: 8 experts over 3 workers →
  // {0,1,2}, {3,4,5}, {6,7}. Fails if n_workers < 1 or n_workers > n_experts.
  static Result<ExpertPlacement> contiguous(int64_t n_experts, int64_t n_workers);
  // From explicit per-worker expert lists; every expert must appear at least once, and at most
  // once per worker.
  static Result<ExpertPlacement> from_worker_lists(int64_t n_experts,
                                                   std::vector<std::vector<int32_t>> worker_experts);
  static Result<ExpertPlacement> from_json(const nlohmann::json& j, int64_t n_experts);
  nlohmann::json to_json() const;

  int64_t n_experts() const { return n_experts_; }
  int64_t n_workers() const { return static_cast<int64_t>(worker_experts_.size()); }
  // Global expert ids held by `worker`, in local-index order.
  const std::vector<int32_t>& experts_of(int64_t worker) const {
    return worker_experts_[static_cast<size_t>(worker)];
  }
  // The worker that serves `expert` for the token with index `token_index` in its batch.
  int32_t route(int32_t expert, int64_t token_index) const {
    const auto& r = replicas_[static_cast<size_t>(expert)];
    return r.size() == 1 ? r[0].worker : r[static_cast<size_t>(token_index) % r.size()].worker;
  }
  // Local index of `expert` on `worker`, or -1 if the worker does not hold it.
  int32_t local_index(int64_t worker, int32_t expert) const;
  // Whether some expert has more than one replica.
  bool has_replicas() const;
  // For the device layout (MoeLayout::expert_replica): [n_experts * 2] = per expert (replicas, the
  // index of `worker`'s replica among them, 0 if it holds none), so that token t of a replicated
  // expert is computed by `worker` iff route(expert, t) == worker.
  std::vector<int32_t> replica_table(int64_t worker) const;

 private:
  struct Replica {
    int32_t worker;
    int32_t local;
  };
  int64_t n_experts_ = 0;
  std::vector<std::vector<int32_t>> worker_experts_;  // [n_workers] → global expert ids
  std::vector<std::vector<Replica>> replicas_;        // [n_experts] → where it lives
};

}  // namespace msi

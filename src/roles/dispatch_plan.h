// DispatchPlan: host-side planning of one unit's dispatch from one attention worker: for every
// expert worker, which tokens go there (each token once per worker) with that worker's local
// expert ids and gates, and how the replies map back to token rows.
//
// Buffers are sized at construction (max_tokens × top_k per destination); plan() never
// allocates. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "roles/expert_placement.h"

namespace msi {

class DispatchPlan {
 public:
  DispatchPlan(const ExpertPlacement& placement, int64_t max_tokens, int64_t top_k);

  // ids, gates: [n_tokens, top_k] host arrays (global expert ids, weights).
  void plan(const int32_t* ids, const float* gates, int64_t n_tokens);

  int64_t n_dests() const { return static_cast<int64_t>(dests_.size()); }
  struct Dest {
    std::vector<int32_t> token_rows;  // [n] rows of the unit's tokens sent to this worker
    std::vector<int32_t> local_ids;   // [n, top_k]; -1 where the expert is elsewhere
    std::vector<float> gates;         // [n, top_k]
    int64_t n_tokens() const { return static_cast<int64_t>(token_rows.size()); }
  };
  const Dest& dest(int64_t d) const { return dests_[static_cast<size_t>(d)]; }

 private:
  const ExpertPlacement& placement_;
  int64_t top_k_;
  std::vector<Dest> dests_;
};

}  // namespace msi

#include "roles/dispatch_plan.h"

namespace msi {

DispatchPlan::DispatchPlan(const ExpertPlacement& placement, int64_t max_tokens, int64_t top_k)
    : placement_(placement), top_k_(top_k), dests_(static_cast<size_t>(placement.n_workers())) {
  for (Dest& d : dests_) {
    d.token_rows.reserve(static_cast<size_t>(max_tokens));
    d.local_ids.reserve(static_cast<size_t>(max_tokens * top_k));
    d.gates.reserve(static_cast<size_t>(max_tokens * top_k));
  }
}

void DispatchPlan::plan(const int32_t* ids, const float* gates, int64_t n_tokens) {
  for (Dest& d : dests_) {
    d.token_rows.clear();
    d.local_ids.clear();
    d.gates.clear();
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t k = 0; k < top_k_; ++k) {
      const int32_t e = ids[t * top_k_ + k];
      Dest& d = dests_[static_cast<size_t>(placement_.route(e, t))];
      // First expert of this token on d: open a row of -1s.
      if (d.token_rows.empty() || d.token_rows.back() != t) {
        d.token_rows.push_back(static_cast<int32_t>(t));
        d.local_ids.insert(d.local_ids.end(), static_cast<size_t>(top_k_), -1);
        d.gates.insert(d.gates.end(), static_cast<size_t>(top_k_), 0.0f);
      }
      const size_t at = (d.token_rows.size() - 1) * static_cast<size_t>(top_k_) + static_cast<size_t>(k);
      d.local_ids[at] = placement_.local_index(placement_.route(e, t), e);
      d.gates[at] = gates[t * top_k_ + k];
    }
  }
}

}  // namespace msi

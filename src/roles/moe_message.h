// The messages between the two roles for one unit of work (step, layer, micro-batch).
//
// Dispatch (attention worker a → expert worker e): the tokens of a's micro-batch that have at
// least one of their top-k experts on e, each once, with e's local expert ids and gate weights.
// Combine (e → a): one row per dispatched token, the gate-weighted sum of e's experts' outputs.
// Views are into buffers of fixed capacity allocated at setup; n_tokens rows are valid.
#pragma once

#include <cstdint>

#include "backend/tensor.h"

namespace msi {

struct UnitId {
  int64_t step = 0;
  int32_t layer = 0;
  int32_t micro_batch = 0;
  bool operator==(const UnitId&) const = default;
};

struct DispatchMessage {
  int64_t n_tokens = 0;
  Tensor hidden;      // [capacity, hidden] compute dtype; rows [0, n_tokens) valid
  Tensor expert_ids;  // [capacity, top_k] int32: local expert index on the receiver, -1 = not here
  Tensor gates;       // [capacity, top_k] f32
};

struct CombineMessage {
  int64_t n_tokens = 0;
  Tensor partial;  // [capacity, hidden]; rows [0, n_tokens) valid
};

}  // namespace msi

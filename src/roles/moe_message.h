// The messages between the two roles for one unit of work (step, layer, micro-batch).
//
// Dispatch (attention worker a → expert worker e): the tokens of a's micro-batch that have at
// least one of their top-k experts on e, each once, with e's local expert ids and gate weights.
// Combine (e → a): one row per dispatched token, the gate-weighted sum of e's experts' outputs.
// Views are into buffers of fixed capacity allocated at setup; n_tokens rows are valid.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/tensor.h"
#include "comm/m2n.h"

namespace msi {

using UnitId = comm::UnitAddr;

// Message flags (comm::MessageHeader::flags).
inline constexpr uint32_t kFlagIdle = 1u;      // dispatch: the sender has no tokens in this whole step
inline constexpr uint32_t kFlagShutdown = 4u;  // dispatch: ...and never will again
inline constexpr uint32_t kFlagAllIdle = 8u;   // combine: every sender is idle (they may sleep)
inline constexpr uint32_t kFlagStop = 2u;      // combine: every sender shut down; the run is over

// Byte layout of a dispatch payload of n tokens (f32 activations), each part 64-byte aligned:
//   expert_ids int32 [n, top_k] | gates f32 [n, top_k] | hidden f32 [n, hidden]
// and of a combine payload: partial f32 [n, hidden].
struct DispatchLayout {
  size_t ids_offset = 0, gates_offset = 0, hidden_offset = 0, total_bytes = 0;
};
inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }
inline DispatchLayout dispatch_layout(int64_t n, int64_t top_k, int64_t hidden) {
  DispatchLayout l;
  l.gates_offset = align64(static_cast<size_t>(n * top_k) * sizeof(int32_t));
  l.hidden_offset = l.gates_offset + align64(static_cast<size_t>(n * top_k) * sizeof(float));
  l.total_bytes = l.hidden_offset + static_cast<size_t>(n * hidden) * sizeof(float);
  return l;
}
inline size_t combine_bytes(int64_t n, int64_t hidden) {
  return static_cast<size_t>(n * hidden) * sizeof(float);
}

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

// The control messages of the peer transport (attention and expert workers of one process whose
// devices reach each other's memory: CUDA peer access over NVLink/PCIe, or the CPU). Tokens never
// travel through a mailbox: the dispatch message says where a unit's tokens are on the attention
// worker's device and which event marks them written; the expert worker's kernels read them in
// place, and its reply says where the grouped partial sums are. The mailboxes (comm/) carry only
// these few words, the unit's address, its token count and the idle/stop flags.
#pragma once

#include <cstdint>

namespace msi {

class DeviceEvent;

struct PeerDispatch {
  const void* hidden = nullptr;        // [n, hidden] compute dtype, the attention worker's device
  const void* topk_ids = nullptr;      // [n, top_k] i32, global expert ids
  const void* topk_weights = nullptr;  // [n, top_k] f32
  DeviceEvent* ready = nullptr;        // recorded after the three were written
};

struct PeerCombine {
  const void* y = nullptr;           // [n * top_k, hidden] grouped rows, the expert worker's device
  const void* token_rows = nullptr;  // [n, top_k] i32: row of y per (token, choice), −1 if elsewhere
  DeviceEvent* done = nullptr;       // recorded after both were written
};

inline constexpr size_t kPeerPayloadBytes = 64;  // mailbox room for either message
static_assert(sizeof(PeerDispatch) <= kPeerPayloadBytes && sizeof(PeerCombine) <= kPeerPayloadBytes);

}  // namespace msi

// The device buffers of one in-flight MoE unit on the experts' side: its routing layout
// (Backend::moe_align's output), the activations between the grouped GEMMs, and the grouped
// partial sums. Shared by the colocated link and the peer transport's expert side, which each keep
// one set per micro-batch (and source). Allocated once, at start-up.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"

namespace msi {

// slot_of_expert for a worker holding `experts` (global ids, in slot order): [n_experts] i32,
// −1 for the experts held elsewhere.
OwnedTensor make_slot_of_expert(Backend& backend, int64_t n_experts, const std::vector<int32_t>& experts);
// MoeLayout::expert_replica from ExpertPlacement::replica_table ([n_experts * 2]); an empty tensor
// when `table` is empty (no replicas).
OwnedTensor make_expert_replica(Backend& backend, const std::vector<int32_t>& table);

struct MoeUnitBuffers {
  OwnedTensor expert_offsets, row_token, row_gate, token_rows, tiles;
  OwnedTensor act;  // [max_tokens * top_k, moe inter]
  OwnedTensor y;    // [max_tokens * top_k, hidden]
  MoeLayout layout;  // views of the above, with the shared slot_of_expert

  MoeUnitBuffers(Backend& backend, const ModelConfig& config, const Tensor& slot_of_expert, int64_t n_slots,
                 int64_t max_tokens, const Tensor& expert_replica = Tensor{});
};

}  // namespace msi

#include "roles/moe_buffers.h"

namespace msi {

OwnedTensor make_slot_of_expert(Backend& backend, int64_t n_experts, const std::vector<int32_t>& experts) {
  std::vector<int32_t> slot_of(static_cast<size_t>(n_experts), -1);
  for (size_t s = 0; s < experts.size(); ++s) {
    const int32_t e = experts[s];
    MSI_CHECK(e >= 0 && e < n_experts && slot_of[static_cast<size_t>(e)] < 0, "bad expert list (expert {})", e);
    slot_of[static_cast<size_t>(e)] = static_cast<int32_t>(s);
  }
  OwnedTensor t = backend.alloc(DType::kI32, {n_experts});
  backend.copy_from_host(t.tensor, slot_of.data(), slot_of.size() * sizeof(int32_t));
  return t;
}

OwnedTensor make_expert_replica(Backend& backend, const std::vector<int32_t>& table) {
  if (table.empty()) return OwnedTensor{};
  OwnedTensor t = backend.alloc(DType::kI32, {static_cast<int64_t>(table.size() / 2), 2});
  backend.copy_from_host(t.tensor, table.data(), table.size() * sizeof(int32_t));
  return t;
}

MoeUnitBuffers::MoeUnitBuffers(Backend& backend, const ModelConfig& config, const Tensor& slot_of_expert,
                               int64_t n_slots, int64_t max_tokens, const Tensor& expert_replica) {
  const int64_t k = config.n_experts_per_tok, rows = max_tokens * k;
  const DType dt = backend.compute_dtype();
  expert_offsets = backend.alloc(DType::kI32, {n_slots + 1});
  row_token = backend.alloc(DType::kI32, {rows});
  row_gate = backend.alloc(DType::kF32, {rows});
  token_rows = backend.alloc(DType::kI32, {max_tokens, k});
  tiles = backend.alloc(DType::kI32, {moe_tile_capacity(rows, n_slots)});
  act = backend.alloc(dt, {rows, config.moe_intermediate_size});
  y = backend.alloc(dt, {rows, config.hidden_size});
  layout = MoeLayout{n_slots, slot_of_expert, expert_offsets.tensor, row_token.tensor, row_gate.tensor,
                     token_rows.tensor, tiles.tensor, expert_replica};
}

}  // namespace msi

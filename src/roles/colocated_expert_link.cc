#include "roles/colocated_expert_link.h"

#include "roles/moe_message.h"

namespace msi {

ColocatedExpertLink::ColocatedExpertLink(const ModelConfig& config, Backend& backend, StackedExpertWeights weights,
                                         int64_t max_tokens, int max_micro_batches)
    : config_(config), backend_(backend), weights_(std::move(weights)), max_tokens_(max_tokens) {
  MSI_CHECK(max_tokens > 0 && max_micro_batches > 0, "colocated experts: max_tokens {} micro-batches {}", max_tokens,
            max_micro_batches);
  const int64_t n_experts = config.n_experts, k = config.n_experts_per_tok;
  const auto n_slots = static_cast<int64_t>(weights_.experts.size());
  std::vector<int32_t> slot_of(static_cast<size_t>(n_experts), -1);
  for (int64_t s = 0; s < n_slots; ++s) {
    const int32_t e = weights_.experts[static_cast<size_t>(s)];
    MSI_CHECK(e >= 0 && e < n_experts && slot_of[static_cast<size_t>(e)] < 0, "bad expert list (expert {})", e);
    slot_of[static_cast<size_t>(e)] = static_cast<int32_t>(s);
  }
  slot_of_expert_ = backend.alloc(DType::kI32, {n_experts});
  backend.copy_from_host(slot_of_expert_.tensor, slot_of.data(), slot_of.size() * sizeof(int32_t));
  load_.assign(static_cast<size_t>(config.n_layers), std::vector<int64_t>(static_cast<size_t>(n_slots), 0));
  h_offsets_.resize(static_cast<size_t>(n_slots + 1));
  const int64_t rows = max_tokens * k;
  const DType dt = backend.compute_dtype();
  slots_.resize(static_cast<size_t>(max_micro_batches));
  for (Slot& s : slots_) {
    s.expert_offsets = backend.alloc(DType::kI32, {n_slots + 1});
    s.row_token = backend.alloc(DType::kI32, {rows});
    s.row_gate = backend.alloc(DType::kF32, {rows});
    s.token_rows = backend.alloc(DType::kI32, {max_tokens, k});
    s.tiles = backend.alloc(DType::kI32, {moe_tile_capacity(rows, n_slots)});
    s.act = backend.alloc(dt, {rows, config.moe_intermediate_size});
    s.y = backend.alloc(dt, {rows, config.hidden_size});
    s.layout.n_slots = n_slots;
    s.layout.slot_of_expert = slot_of_expert_.tensor;
    s.layout.expert_offsets = s.expert_offsets.tensor;
    s.layout.row_token = s.row_token.tensor;
    s.layout.row_gate = s.row_gate.tensor;
    s.layout.token_rows = s.token_rows.tensor;
    s.layout.tiles = s.tiles.tensor;
  }
}

Status ColocatedExpertLink::send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
                                 const Tensor& topk_weights, uint32_t flags) {
  MSI_CHECK(unit.micro_batch >= 0 && static_cast<size_t>(unit.micro_batch) < slots_.size(),
            "micro-batch {} of {}", unit.micro_batch, slots_.size());
  Slot& s = slots_[static_cast<size_t>(unit.micro_batch)];
  MSI_CHECK(s.unit.layer < 0, "unit (step {}, layer {}, mb {}) sent while its slot is busy", unit.step, unit.layer,
            unit.micro_batch);
  const int64_t n = hidden.rows();
  if (n > max_tokens_) {
    return error(StatusCode::kInvalidArgument, "a unit of {} tokens exceeds the expert buffers ({})", n, max_tokens_);
  }
  s.unit = unit;
  s.n_tokens = n;
  s.reply = 0;
  if (flags & kFlagIdle) {
    // The only attention worker these experts serve is idle: so is everyone.
    s.reply = (flags & kFlagShutdown) ? kFlagStop : kFlagAllIdle;
  }
  if (n == 0) return Status::ok();
  const StackedExpertLayer& w = weights_.layers.at(static_cast<size_t>(unit.layer));
  MSI_CHECK(!w.w13.empty(), "layer {} has no experts here", unit.layer);
  const int64_t rows = n * config_.n_experts_per_tok;
  if (marker_) marker_->mark(Stage::kRouter);
  MoeLayout layout = s.layout;
  backend_.moe_align(topk_ids.slice_rows(0, n), topk_weights.slice_rows(0, n), layout);
  if (record_load_) {
    backend_.copy_to_host(h_offsets_.data(), layout.expert_offsets, h_offsets_.size() * sizeof(int32_t));
    std::vector<int64_t>& load = load_[static_cast<size_t>(unit.layer)];
    for (size_t e = 0; e < load.size(); ++e) load[e] += h_offsets_[e + 1] - h_offsets_[e];
  }
  if (marker_) marker_->mark(Stage::kExperts);
  backend_.moe_gate_up(hidden, w.w13.tensor, layout, s.act.tensor.slice_rows(0, rows));
  backend_.moe_down(s.act.tensor.slice_rows(0, rows), w.w2.tensor, layout, s.y.tensor.slice_rows(0, rows));
  return Status::ok();
}

Result<uint32_t> ColocatedExpertLink::receive(const UnitId& unit, const Tensor& out) {
  MSI_CHECK(unit.micro_batch >= 0 && static_cast<size_t>(unit.micro_batch) < slots_.size(),
            "micro-batch {} of {}", unit.micro_batch, slots_.size());
  Slot& s = slots_[static_cast<size_t>(unit.micro_batch)];
  MSI_CHECK(s.unit == unit, "receive of a unit that was not sent");
  s.unit = UnitId{-1, -1, -1};
  if (s.n_tokens > 0) {
    MSI_CHECK(out.rows() == s.n_tokens, "combine into {} rows for {} tokens", out.rows(), s.n_tokens);
    if (marker_) marker_->mark(Stage::kCombine);
    backend_.moe_combine(s.y.tensor.slice_rows(0, s.n_tokens * config_.n_experts_per_tok), s.layout, out);
  }
  return s.reply;
}

}  // namespace msi

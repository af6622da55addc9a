#include "roles/colocated_expert_link.h"

#include "roles/moe_message.h"

namespace msi {

ColocatedExpertLink::ColocatedExpertLink(const ModelConfig& config, Backend& backend, StackedExpertWeights weights,
                                         int64_t max_tokens, int max_micro_batches)
    : config_(config), backend_(backend), weights_(std::move(weights)), max_tokens_(max_tokens) {
  MSI_CHECK(max_tokens > 0 && max_micro_batches > 0, "colocated experts: max_tokens {} micro-batches {}", max_tokens,
            max_micro_batches);
  const auto n_slots = static_cast<int64_t>(weights_.experts.size());
  slot_of_expert_ = make_slot_of_expert(backend, config.n_experts, weights_.experts);
  slots_.reserve(static_cast<size_t>(max_micro_batches));
  for (int i = 0; i < max_micro_batches; ++i) {
    slots_.push_back(Slot{MoeUnitBuffers(backend, config, slot_of_expert_.tensor, n_slots, max_tokens)});
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
  MoeLayout layout = s.buf.layout;
  backend_.moe_align(topk_ids.slice_rows(0, n), topk_weights.slice_rows(0, n), layout);
  if (marker_) marker_->mark(Stage::kExperts);
  backend_.moe_gate_up(hidden, w.w13.tensor, layout, s.buf.act.tensor.slice_rows(0, rows));
  backend_.moe_down(s.buf.act.tensor.slice_rows(0, rows), w.w2.tensor, layout, s.buf.y.tensor.slice_rows(0, rows));
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
    backend_.moe_combine(s.buf.y.tensor.slice_rows(0, s.n_tokens * config_.n_experts_per_tok), s.buf.layout, out);
  }
  return s.reply;
}

}  // namespace msi

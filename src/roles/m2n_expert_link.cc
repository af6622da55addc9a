#include "roles/m2n_expert_link.h"

#include <cstring>

#include "roles/moe_message.h"

namespace msi {

size_t max_dispatch_payload_bytes(int64_t max_tokens, int64_t top_k, int64_t hidden) {
  return dispatch_layout(max_tokens, top_k, hidden).total_bytes;
}

size_t max_combine_payload_bytes(int64_t max_tokens, int64_t hidden) {
  return combine_bytes(max_tokens, hidden);
}

M2NExpertLink::M2NExpertLink(Backend& backend, const ExpertPlacement& placement,
                             std::unique_ptr<comm::M2NSender> dispatch,
                             std::unique_ptr<comm::M2NReceiver> combine, int64_t max_tokens,
                             int64_t hidden, int64_t top_k, int max_micro_batches)
    : backend_(backend), dispatch_(std::move(dispatch)), combine_(std::move(combine)),
      hidden_(hidden), top_k_(top_k) {
  MSI_CHECK(backend.device().kind == DeviceKind::kCpu, "the M2N host transports carry host memory");
  // NOTE: a unit's plan must live until its replies are read. The pipeline has at most one unit
  // per micro-batch in flight (layer l+1 of micro-batch i is sent after layer l's reply), so one
  // plan per micro-batch suffices.
  for (int i = 0; i < max_micro_batches; ++i) plans_.emplace_back(placement, max_tokens, top_k);
  plan_unit_.assign(static_cast<size_t>(max_micro_batches), UnitId{-1, -1, -1});
  rows_ = backend.alloc(DType::kI32, {max_tokens});
  ones_ = backend.alloc(DType::kF32, {max_tokens});
  std::vector<float> ones(static_cast<size_t>(max_tokens), 1.0f);
  backend.copy_from_host(ones_.tensor, ones.data(), ones.size() * sizeof(float));
}

Status M2NExpertLink::send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
                           const Tensor& topk_weights, uint32_t flags) {
  const size_t slot = static_cast<size_t>(unit.micro_batch) % plans_.size();
  MSI_CHECK(static_cast<size_t>(unit.micro_batch) < plans_.size() && plan_unit_[slot].layer < 0, "unit (step {}, layer {}, mb {}) sent while its slot is busy",
            unit.step, unit.layer, unit.micro_batch);
  DispatchPlan& plan = plans_[slot];
  const int64_t n = hidden.rows();
  // NOTE: host transports: the router output and activations are host memory (CPU backend).
  plan.plan(topk_ids.as<int32_t>(), topk_weights.as<float>(), n);
  plan_unit_[slot] = unit;
  for (int64_t d = 0; d < plan.n_dests(); ++d) {
    const DispatchPlan::Dest& dest = plan.dest(d);
    const int64_t m = dest.n_tokens();
    MSI_ASSIGN_OR_RETURN(std::span<std::byte> buf, dispatch_->acquire(static_cast<int>(d)));
    const DispatchLayout layout = dispatch_layout(m, top_k_, hidden_);
    if (layout.total_bytes > buf.size()) {
      return error(StatusCode::kInvalidArgument, "dispatch of {} tokens exceeds the mailbox capacity", m);
    }
    std::memcpy(buf.data() + layout.ids_offset, dest.local_ids.data(), dest.local_ids.size() * sizeof(int32_t));
    std::memcpy(buf.data() + layout.gates_offset, dest.gates.data(), dest.gates.size() * sizeof(float));
    if (m > 0) {
      const Tensor rows = rows_.tensor.slice_rows(0, m);
      backend_.copy_from_host(rows, dest.token_rows.data(), static_cast<size_t>(m) * sizeof(int32_t));
      // Gather the rows straight into the receiver-visible mailbox: no staging copy.
      const Tensor out = Tensor::view(buf.data() + layout.hidden_offset, DType::kF32, {m, hidden_});
      backend_.gather_rows(hidden, rows, out);
    }
    comm::MessageHeader h;
    h.unit = unit;
    h.n_tokens = m;
    h.payload_bytes = layout.total_bytes;
    h.flags = flags;
    MSI_RETURN_IF_ERROR(dispatch_->commit(static_cast<int>(d), h));
  }
  return Status::ok();
}

Result<uint32_t> M2NExpertLink::receive(const UnitId& unit, const Tensor& out) {
  const size_t slot = static_cast<size_t>(unit.micro_batch) % plans_.size();
  MSI_CHECK(plan_unit_[slot] == unit, "receive of a unit that was not sent");
  const DispatchPlan& plan = plans_[slot];
  uint32_t flags = 0;
  for (int64_t d = 0; d < plan.n_dests(); ++d) {
    Result<comm::Message> received = combine_->receive(static_cast<int>(d), &unit);
    while (patient_ && received.status().code() == StatusCode::kDeadlineExceeded) {
      received = combine_->receive(static_cast<int>(d), &unit);
    }
    MSI_ASSIGN_OR_RETURN(comm::Message msg, std::move(received));
    const DispatchPlan::Dest& dest = plan.dest(d);
    const int64_t m = dest.n_tokens();
    flags |= msg.header.flags;
    if ((msg.header.flags & kFlagStop) == 0 &&
        (msg.header.n_tokens != m || msg.header.payload_bytes != combine_bytes(m, hidden_))) {
      combine_->release(static_cast<int>(d));
      return error(StatusCode::kInternal, "expert worker {} replied with {} rows for {} tokens", d,
                   msg.header.n_tokens, m);
    }
    if (m > 0 && (msg.header.flags & kFlagStop) == 0) {
      const Tensor rows = rows_.tensor.slice_rows(0, m);
      backend_.copy_from_host(rows, dest.token_rows.data(), static_cast<size_t>(m) * sizeof(int32_t));
      const Tensor partial = Tensor::view(const_cast<std::byte*>(msg.payload.data()), DType::kF32, {m, hidden_});
      backend_.scatter_add_rows(partial, rows, ones_.tensor.slice_rows(0, m), out);
    }
    combine_->release(static_cast<int>(d));
  }
  plan_unit_[slot] = UnitId{-1, -1, -1};
  return flags;
}

}  // namespace msi

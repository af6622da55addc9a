#include "roles/peer_expert_link.h"

#include <cstring>

#include "roles/moe_message.h"
#include "roles/peer_message.h"

namespace msi {

PeerExpertLink::PeerExpertLink(const ModelConfig& config, Backend& backend,
                               std::unique_ptr<comm::M2NSender> dispatch, std::unique_ptr<comm::M2NReceiver> combine,
                               int n_expert_workers, int max_micro_batches, bool interprocess)
    : config_(config), backend_(backend), dispatch_(std::move(dispatch)), combine_(std::move(combine)),
      n_dests_(n_expert_workers), sent_tokens_(static_cast<size_t>(max_micro_batches), 0),
      sent_unit_(static_cast<size_t>(max_micro_batches), UnitId{-1, -1, -1}) {
  for (int i = 0; i < max_micro_batches; ++i) {
    ready_.push_back(interprocess ? backend.make_shared_event() : backend.make_event());
  }
}

std::vector<DeviceEvent*> PeerExpertLink::events() const {
  std::vector<DeviceEvent*> out;
  for (const auto& e : ready_) out.push_back(e.get());
  return out;
}

Status PeerExpertLink::send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
                            const Tensor& topk_weights, uint32_t flags) {
  const auto mb = static_cast<size_t>(unit.micro_batch);
  MSI_CHECK(mb < ready_.size() && sent_unit_[mb].layer < 0, "unit (step {}, layer {}, mb {}) sent while its slot is busy",
            unit.step, unit.layer, unit.micro_batch);
  const int64_t n = hidden.rows();
  sent_unit_[mb] = unit;
  sent_tokens_[mb] = n;
  PeerDispatch msg{hidden.data, topk_ids.data, topk_weights.data, ready_[mb].get()};
  if (n > 0) backend_.record_event(*ready_[mb]);  // the router's output and the tokens are written
  for (int d = 0; d < n_dests_; ++d) {
    MSI_ASSIGN_OR_RETURN(std::span<std::byte> buf, dispatch_->acquire(d));
    comm::MessageHeader h;
    h.unit = unit;
    h.n_tokens = n;
    h.flags = flags;
    if (n > 0) {
      std::memcpy(buf.data(), &msg, sizeof(msg));
      h.payload_bytes = sizeof(msg);
    }
    MSI_RETURN_IF_ERROR(dispatch_->commit(d, h));
  }
  return Status::ok();
}

Result<uint32_t> PeerExpertLink::receive(const UnitId& unit, const Tensor& out) {
  const auto mb = static_cast<size_t>(unit.micro_batch);
  MSI_CHECK(mb < ready_.size() && sent_unit_[mb] == unit, "receive of a unit that was not sent");
  const int64_t n = sent_tokens_[mb], k = config_.n_experts_per_tok, h = config_.hidden_size;
  uint32_t flags = 0;
  for (int d = 0; d < n_dests_; ++d) {
    Result<comm::Message> received = combine_->receive(d, &unit);
    while (patient_ && received.status().code() == StatusCode::kDeadlineExceeded) {
      received = combine_->receive(d, &unit);
    }
    MSI_ASSIGN_OR_RETURN(comm::Message msg, std::move(received));
    flags |= msg.header.flags;
    if ((msg.header.flags & kFlagStop) == 0 && n > 0) {
      if (msg.header.n_tokens != n || msg.header.payload_bytes != sizeof(PeerCombine)) {
        combine_->release(d);
        return error(StatusCode::kInternal, "expert worker {} replied for {} tokens ({} bytes), {} were sent", d,
                     msg.header.n_tokens, msg.header.payload_bytes, n);
      }
      PeerCombine reply;
      std::memcpy(&reply, msg.payload.data(), sizeof(reply));
      const DType dt = backend_.compute_dtype();
      const Result<const void*> y_at = peer(d).memory(reply.y, static_cast<size_t>(n * k * h) * dtype_size(dt));
      const Result<const void*> rows_at = peer(d).memory(reply.token_rows, static_cast<size_t>(n * k) * sizeof(int32_t));
      const Result<DeviceEvent*> done = peer(d).event(reply.done);
      if (!y_at.is_ok() || !rows_at.is_ok() || !done.is_ok()) {
        combine_->release(d);
        return !y_at.is_ok() ? y_at.status() : !rows_at.is_ok() ? rows_at.status() : done.status();
      }
      // The partial sums are on the expert's device: this device waits for them, then reads them.
      backend_.wait_event(**done);
      MoeLayout layout;
      layout.token_rows = Tensor::view(const_cast<void*>(*rows_at), DType::kI32, {n, k});
      const Tensor y = Tensor::view(const_cast<void*>(*y_at), dt, {n * k, h});
      backend_.moe_combine(y, layout, out);
    }
    combine_->release(d);
  }
  sent_unit_[mb] = UnitId{-1, -1, -1};
  return flags;
}

}  // namespace msi

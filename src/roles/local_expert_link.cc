#include "roles/local_expert_link.h"

#include <vector>

namespace msi {

LocalExpertLink::LocalExpertLink(Backend& backend, const ExpertPlacement& placement,
                                 std::vector<ExpertWorker*> workers, int64_t max_tokens,
                                 int64_t hidden, int64_t top_k)
    : backend_(backend), workers_(std::move(workers)), plan_(placement, max_tokens, top_k) {
  MSI_CHECK(static_cast<int64_t>(workers_.size()) == placement.n_workers(), "one worker per placement slot");
  const DType dt = backend.compute_dtype();
  for (size_t d = 0; d < workers_.size(); ++d) {
    send_hidden_.push_back(backend.alloc(dt, {max_tokens, hidden}));
    send_ids_.push_back(backend.alloc(DType::kI32, {max_tokens, top_k}));
    send_gates_.push_back(backend.alloc(DType::kF32, {max_tokens, top_k}));
    recv_partial_.push_back(backend.alloc(dt, {max_tokens, hidden}));
    sent_.push_back(DispatchMessage{0, send_hidden_.back().tensor, send_ids_.back().tensor,
                                    send_gates_.back().tensor});
    replies_.push_back(CombineMessage{0, recv_partial_.back().tensor});
  }
  rows_ = backend.alloc(DType::kI32, {max_tokens});
  ones_ = backend.alloc(DType::kF32, {max_tokens});
  std::vector<float> ones(static_cast<size_t>(max_tokens), 1.0f);
  backend.copy_from_host(ones_.tensor, ones.data(), ones.size() * sizeof(float));
}

Status LocalExpertLink::send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
                             const Tensor& topk_weights) {
  MSI_CHECK(!has_pending_, "send of a unit before the previous one was received");
  const int64_t n = hidden.rows();
  // NOTE: the CPU backend's tensors are host memory, so the router output is read in place.
  plan_.plan(topk_ids.as<int32_t>(), topk_weights.as<float>(), n);
  for (int64_t d = 0; d < plan_.n_dests(); ++d) {
    const DispatchPlan::Dest& dest = plan_.dest(d);
    DispatchMessage& m = sent_[static_cast<size_t>(d)];
    m.n_tokens = dest.n_tokens();
    if (m.n_tokens == 0) continue;
    const Tensor rows = rows_.tensor.slice_rows(0, m.n_tokens);
    backend_.copy_from_host(rows, dest.token_rows.data(), dest.token_rows.size() * sizeof(int32_t));
    backend_.gather_rows(hidden, rows, m.hidden.slice_rows(0, m.n_tokens));
    backend_.copy_from_host(m.expert_ids, dest.local_ids.data(), dest.local_ids.size() * sizeof(int32_t));
    backend_.copy_from_host(m.gates, dest.gates.data(), dest.gates.size() * sizeof(float));
  }
  for (size_t d = 0; d < workers_.size(); ++d) {
    MSI_RETURN_IF_ERROR(workers_[d]->process(unit.layer, std::span<const DispatchMessage>(&sent_[d], 1),
                                             std::span<CombineMessage>(&replies_[d], 1)));
  }
  pending_ = unit;
  has_pending_ = true;
  return Status::ok();
}

Status LocalExpertLink::receive(const UnitId& unit, const Tensor& out) {
  MSI_CHECK(has_pending_ && pending_ == unit, "receive of a unit that was not sent");
  has_pending_ = false;
  for (int64_t d = 0; d < plan_.n_dests(); ++d) {
    const DispatchPlan::Dest& dest = plan_.dest(d);
    const CombineMessage& r = replies_[static_cast<size_t>(d)];
    if (r.n_tokens == 0) continue;
    const Tensor rows = rows_.tensor.slice_rows(0, r.n_tokens);
    backend_.copy_from_host(rows, dest.token_rows.data(), dest.token_rows.size() * sizeof(int32_t));
    backend_.scatter_add_rows(r.partial.slice_rows(0, r.n_tokens), rows,
                              ones_.tensor.slice_rows(0, r.n_tokens), out);
  }
  return Status::ok();
}

}  // namespace msi

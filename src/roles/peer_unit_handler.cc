#include "roles/peer_unit_handler.h"

#include <cstring>

namespace msi {

PeerUnitHandler::PeerUnitHandler(const ModelConfig& config, Backend& backend, StackedExpertWeights weights,
                                 int n_sources, int64_t max_tokens, int max_micro_batches, bool interprocess,
                                 std::vector<int32_t> expert_replica)
    : config_(config), backend_(backend), weights_(std::move(weights)), max_tokens_(max_tokens),
      taken_(static_cast<size_t>(n_sources)) {
  const auto n_slots = static_cast<int64_t>(weights_.experts.size());
  slot_of_expert_ = make_slot_of_expert(backend, config.n_experts, weights_.experts);
  expert_replica_ = make_expert_replica(backend, expert_replica);
  clock_ = backend.make_clock(2);
  slots_.resize(static_cast<size_t>(n_sources));
  for (auto& per_source : slots_) {
    per_source.reserve(static_cast<size_t>(max_micro_batches));
    for (int i = 0; i < max_micro_batches; ++i) {
      per_source.push_back(Slot{MoeUnitBuffers(backend, config, slot_of_expert_.tensor, n_slots, max_tokens,
                                               expert_replica_.tensor),
                                backend.alloc(backend.compute_dtype(), {max_tokens, config.hidden_size}),
                                interprocess ? backend.make_shared_event() : backend.make_event()});
    }
  }
}

std::vector<Tensor> PeerUnitHandler::exported_allocations() const {
  std::vector<Tensor> out;
  for (const auto& per_source : slots_) {
    for (const Slot& s : per_source) {
      out.push_back(s.buf.y.tensor);
      out.push_back(s.buf.token_rows.tensor);
    }
  }
  return out;
}

std::vector<DeviceEvent*> PeerUnitHandler::events() const {
  std::vector<DeviceEvent*> out;
  for (const auto& per_source : slots_) {
    for (const Slot& s : per_source) out.push_back(s.done.get());
  }
  return out;
}

Status PeerUnitHandler::take(int source, const comm::MessageHeader& header, std::span<const std::byte> payload) {
  Taken& t = taken_[static_cast<size_t>(source)];
  t.n = header.n_tokens;
  t.mb = header.unit.micro_batch;
  if (t.n < 0 || t.n > max_tokens_ || t.mb < 0 || static_cast<size_t>(t.mb) >= slots_[0].size()) {
    return error(StatusCode::kInternal, "attention worker {} sent a unit of {} tokens for micro-batch {}", source,
                 t.n, t.mb);
  }
  waited_ = false;
  if (t.n == 0) return Status::ok();  // idle probes and empty micro-batches carry no tokens
  if (header.payload_bytes != sizeof(PeerDispatch) || payload.size() < sizeof(PeerDispatch)) {
    return error(StatusCode::kInternal, "attention worker {} sent a {}-byte peer dispatch", source,
                 header.payload_bytes);
  }
  PeerDispatch msg;
  std::memcpy(&msg, payload.data(), sizeof(PeerDispatch));
  // Addresses in the attention worker's process → this process's mappings (identity for threads).
  const PeerMemoryMap& map = peer(source);
  const int64_t k = config_.n_experts_per_tok;
  MSI_ASSIGN_OR_RETURN(t.msg.hidden, map.memory(msg.hidden, static_cast<size_t>(t.n * config_.hidden_size) *
                                                                 dtype_size(backend_.compute_dtype())));
  MSI_ASSIGN_OR_RETURN(t.msg.topk_ids, map.memory(msg.topk_ids, static_cast<size_t>(t.n * k) * sizeof(int32_t)));
  MSI_ASSIGN_OR_RETURN(t.msg.topk_weights, map.memory(msg.topk_weights, static_cast<size_t>(t.n * k) * sizeof(float)));
  MSI_ASSIGN_OR_RETURN(t.msg.ready, map.event(msg.ready));
  return Status::ok();
}

void PeerUnitHandler::wait_inputs() {
  // The tokens are the attention workers': this device's stream waits for them, then reads them.
  for (const Taken& t : taken_) {
    if (t.n > 0) backend_.wait_event(*t.msg.ready);
  }
  waited_ = true;
}

Status PeerUnitHandler::run(int layer, std::span<const std::span<std::byte>> replies,
                            std::span<comm::MessageHeader> reply_headers) {
  if (!waited_) wait_inputs();
  waited_ = false;
  const StackedExpertLayer& w = weights_.layers.at(static_cast<size_t>(layer));
  const int64_t h = config_.hidden_size, k = config_.n_experts_per_tok;
  const DType dt = backend_.compute_dtype();
  const bool profile = profile_.load();
  for (size_t src = 0; src < taken_.size(); ++src) {
    const Taken& t = taken_[src];
    reply_headers[src].n_tokens = t.n;
    reply_headers[src].payload_bytes = 0;
    if (t.n == 0) continue;
    Slot& s = slots_[src][static_cast<size_t>(t.mb)];
    const int64_t rows = t.n * k;
    MSI_CHECK(!w.w13.empty(), "layer {} has no experts on this worker", layer);
    if (profile) clock_->record(0);
    const Tensor hidden = s.hidden.tensor.slice_rows(0, t.n);
    backend_.copy(hidden, Tensor::view(const_cast<void*>(t.msg.hidden), dt, {t.n, h}));
    const Tensor ids = Tensor::view(const_cast<void*>(t.msg.topk_ids), DType::kI32, {t.n, k});
    const Tensor gates = Tensor::view(const_cast<void*>(t.msg.topk_weights), DType::kF32, {t.n, k});
    backend_.moe_align(ids, gates, s.buf.layout);
    backend_.moe_gate_up(hidden, w.w13.tensor, s.buf.layout, s.buf.act.tensor.slice_rows(0, rows));
    backend_.moe_down(s.buf.act.tensor.slice_rows(0, rows), w.w2.tensor, s.buf.layout, s.buf.y.tensor.slice_rows(0, rows));
    if (profile) {
      clock_->record(1);
      busy_ms_ += clock_->elapsed_ms(0, 1);
    }
    backend_.record_event(*s.done);
    PeerCombine reply{s.buf.y.tensor.data, s.buf.token_rows.tensor.data, s.done.get()};
    if (replies[src].size() < sizeof(reply)) {
      return error(StatusCode::kInternal, "combine mailbox of {} bytes", replies[src].size());
    }
    std::memcpy(replies[src].data(), &reply, sizeof(reply));
    reply_headers[src].payload_bytes = sizeof(reply);
  }
  return Status::ok();
}

int64_t PeerUnitHandler::unit_rows() const {
  int64_t total = 0;
  for (const Taken& t : taken_) total += t.n * config_.n_experts_per_tok;
  return total;
}

}  // namespace msi

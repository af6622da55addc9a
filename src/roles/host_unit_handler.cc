#include "roles/host_unit_handler.h"

namespace msi {

HostUnitHandler::HostUnitHandler(const ModelConfig& config, ExpertWorker& worker, int n_sources)
    : config_(config), worker_(worker), in_(static_cast<size_t>(n_sources)), out_(static_cast<size_t>(n_sources)) {}

Status HostUnitHandler::take(int s, const comm::MessageHeader& header, std::span<const std::byte> payload) {
  const int64_t h = config_.hidden_size, k = config_.n_experts_per_tok;
  const int64_t n = header.n_tokens;
  const DispatchLayout layout = dispatch_layout(n, k, h);
  if (header.payload_bytes != layout.total_bytes || payload.size() < layout.total_bytes) {
    return error(StatusCode::kInternal, "attention worker {} sent {} bytes for {} tokens (expected {})", s,
                 header.payload_bytes, n, layout.total_bytes);
  }
  auto* base = const_cast<std::byte*>(payload.data());
  DispatchMessage& m = in_[static_cast<size_t>(s)];
  m.n_tokens = n;
  m.expert_ids = Tensor::view(base + layout.ids_offset, DType::kI32, {n, k});
  m.gates = Tensor::view(base + layout.gates_offset, DType::kF32, {n, k});
  m.hidden = Tensor::view(base + layout.hidden_offset, DType::kF32, {n, h});
  return Status::ok();
}

Status HostUnitHandler::run(int layer, std::span<const std::span<std::byte>> replies,
                            std::span<comm::MessageHeader> reply_headers) {
  const int64_t h = config_.hidden_size;
  for (size_t s = 0; s < in_.size(); ++s) {
    const int64_t n = in_[s].n_tokens;
    if (combine_bytes(n, h) > replies[s].size()) {
      return error(StatusCode::kInvalidArgument, "combine of {} tokens exceeds the mailbox capacity", n);
    }
    out_[s].partial = Tensor::view(replies[s].data(), DType::kF32, {n, h});
  }
  MSI_RETURN_IF_ERROR(worker_.process(layer, in_, out_));
  for (size_t s = 0; s < in_.size(); ++s) {
    reply_headers[s].n_tokens = out_[s].n_tokens;
    reply_headers[s].payload_bytes = combine_bytes(out_[s].n_tokens, h);
  }
  return Status::ok();
}

int64_t HostUnitHandler::unit_rows() const {
  int64_t total = 0;
  for (const DispatchMessage& m : in_) total += m.n_tokens;
  return total;
}

}  // namespace msi

// HostUnitHandler: the expert side of the host M2N transports. Dispatch payloads carry the tokens
// themselves (moe_message.h: local expert ids, gates, rows); the handler runs its ExpertWorker on
// all sources at once and writes the partial sums straight into the combine mailboxes.
#pragma once

#include <vector>

#include "model/config.h"
#include "roles/expert_unit_handler.h"
#include "roles/expert_worker.h"
#include "roles/moe_message.h"

namespace msi {

class HostUnitHandler final : public ExpertUnitHandler {
 public:
  HostUnitHandler(const ModelConfig& config, ExpertWorker& worker, int n_sources);

  Status take(int source, const comm::MessageHeader& header, std::span<const std::byte> payload) override;
  Status run(int layer, std::span<const std::span<std::byte>> replies,
             std::span<comm::MessageHeader> reply_headers) override;
  int64_t unit_rows() const override;

 private:
  const ModelConfig& config_;
  ExpertWorker& worker_;
  std::vector<DispatchMessage> in_;
  std::vector<CombineMessage> out_;
};

}  // namespace msi

// M2NExpertLink: an attention worker's ExpertLink over the M2N library. send() plans the
// dispatch and writes each expert worker's tokens straight into that worker's mailbox (local
// expert ids, gates, rows; see moe_message.h for the layout); receive() reads the combine
// replies from every expert worker and adds the partial sums into the MoE output.
//
// Owns its two endpoints (dispatch sender, combine receiver). Buffers sized at construction;
// no allocation per unit. One thread drives it.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/m2n.h"
#include "roles/dispatch_plan.h"
#include "roles/expert_link.h"

namespace msi {

class M2NExpertLink final : public ExpertLink {
 public:
  M2NExpertLink(Backend& backend, const ExpertPlacement& placement,
                std::unique_ptr<comm::M2NSender> dispatch, std::unique_ptr<comm::M2NReceiver> combine,
                int64_t max_tokens, int64_t hidden, int64_t top_k, int max_micro_batches);

  Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
              const Tensor& topk_weights, uint32_t flags) override;
  Result<uint32_t> receive(const UnitId& unit, const Tensor& out) override;
  void set_patient(bool patient) override { patient_ = patient; }

 private:
  Backend& backend_;
  std::unique_ptr<comm::M2NSender> dispatch_;
  std::unique_ptr<comm::M2NReceiver> combine_;
  int64_t hidden_, top_k_;
  // One plan per in-flight unit (ring over micro-batch slots): the replies of unit u map back to
  // token rows through the plan made when u was sent.
  std::vector<DispatchPlan> plans_;
  std::vector<UnitId> plan_unit_;
  OwnedTensor rows_, ones_;
  bool patient_ = false;
};

// The largest dispatch / combine payload for `max_tokens` tokens per unit.
size_t max_dispatch_payload_bytes(int64_t max_tokens, int64_t top_k, int64_t hidden);
size_t max_combine_payload_bytes(int64_t max_tokens, int64_t hidden);

}  // namespace msi

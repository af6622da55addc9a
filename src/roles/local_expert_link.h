// LocalExpertLink: one attention worker talking to in-process expert workers by direct calls.
// send() builds each worker's DispatchMessage and runs that worker's experts at once (the
// synchronous single-device path); receive() adds the replies. Buffers sized at construction.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "roles/dispatch_plan.h"
#include "roles/expert_link.h"
#include "roles/expert_worker.h"

namespace msi {

class LocalExpertLink final : public ExpertLink {
 public:
  // `workers[i]` is expert worker i of `placement`; all share `backend`.
  LocalExpertLink(Backend& backend, const ExpertPlacement& placement,
                  std::vector<ExpertWorker*> workers, int64_t max_tokens, int64_t hidden,
                  int64_t top_k);

  Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
              const Tensor& topk_weights) override;
  Status receive(const UnitId& unit, const Tensor& out) override;

 private:
  Backend& backend_;
  std::vector<ExpertWorker*> workers_;
  DispatchPlan plan_;
  std::vector<OwnedTensor> send_hidden_, send_ids_, send_gates_, recv_partial_;
  OwnedTensor rows_, ones_;
  std::vector<DispatchMessage> sent_;
  std::vector<CombineMessage> replies_;
  UnitId pending_;
  bool has_pending_ = false;
};

}  // namespace msi

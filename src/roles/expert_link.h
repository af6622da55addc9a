// ExpertLink: the attention worker's connection to all expert workers. send() hands off one
// unit's routed tokens; receive() waits for the partial sums and adds them into the MoE output.
// Between the two, the attention worker is free to compute (the shared expert, other
// micro-batches). Implementations: LocalExpertLink (in-process, synchronous) here; the M2N
// transports (comm/) later.
#pragma once

#include "backend/tensor.h"
#include "core/status.h"
#include "roles/moe_message.h"

namespace msi {

class ExpertLink {
 public:
  virtual ~ExpertLink() = default;
  // hidden: [n, hidden] post-attention-norm activations; topk_ids: [n, top_k] int32 global expert
  // ids; topk_weights: [n, top_k] f32. Every expert worker gets a message (possibly empty).
  // May not block on the expert side's compute (transports); the local link runs it inline.
  // `flags` (moe_message.h) travel with every message of the unit.
  virtual Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids,
                      const Tensor& topk_weights, uint32_t flags = 0) = 0;
  // Waits, with a timeout, for every expert worker's reply for `unit` and adds the partial sums
  // into out [n, hidden]. Returns the OR of the replies' flags. A dead or silent peer is an
  // error naming it.
  virtual Result<uint32_t> receive(const UnitId& unit, const Tensor& out) = 0;
  // While patient, receive() waits without a deadline (a dead peer is still an error): used for
  // the first reply after a step where the whole deployment was idle, which comes only when
  // some worker gets work.
  virtual void set_patient(bool patient) = 0;
  // True when send() and receive() only enqueue work on the attention worker's own device stream
  // (never wait on the host), so a whole step can be recorded into a device graph.
  virtual bool device_local() const { return false; }
};

}  // namespace msi

// ColocatedExpertLink: an ExpertLink whose experts live on the attention worker's own device (one
// GPU running the whole model, or each data-parallel replica holding every expert). Nothing
// crosses a process or a device: send() enqueues the routing layout and the grouped expert MLPs
// (Backend::moe_align, moe_gate_up, moe_down) on the backend's stream, receive() enqueues the
// combine into the MoE output. No host sync, no allocation per unit, no host loop over experts.
//
// Idle protocol (attention_runner.h): with no other attention worker to wait for, an idle probe
// is answered at once: kFlagAllIdle, or kFlagStop when the probe also says shutdown.
//
// Buffers (routing layout, activations, outputs) are sized at construction for `max_tokens`
// tokens per unit, one set per micro-batch: the pipeline has one unit per micro-batch in flight.
// One thread drives a link.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "roles/expert_link.h"
#include "roles/moe_buffers.h"
#include "roles/stage_marker.h"
#include "roles/weights.h"

namespace msi {

class ColocatedExpertLink final : public ExpertLink {
 public:
  ColocatedExpertLink(const ModelConfig& config, Backend& backend, StackedExpertWeights weights, int64_t max_tokens,
                      int max_micro_batches);

  Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids, const Tensor& topk_weights,
              uint32_t flags) override;
  Result<uint32_t> receive(const UnitId& unit, const Tensor& out) override;
  void set_patient(bool) override {}
  bool device_local() const override { return marker_ == nullptr; }
  void set_marker(StageMarker* marker) { marker_ = marker; }

 private:
  struct Slot {
    MoeUnitBuffers buf;
    UnitId unit{-1, -1, -1};
    int64_t n_tokens = 0;
    uint32_t reply = 0;  // an idle probe's answer
  };

  const ModelConfig& config_;
  Backend& backend_;
  StackedExpertWeights weights_;
  int64_t max_tokens_;
  OwnedTensor slot_of_expert_;  // shared by every slot's layout
  std::vector<Slot> slots_;
  StageMarker* marker_ = nullptr;
};

}  // namespace msi

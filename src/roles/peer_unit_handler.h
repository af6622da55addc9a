// PeerUnitHandler: the expert side of the peer transport (peer_message.h). For each attention
// worker's message of a unit it waits (on the device) for the tokens to be written, computes the
// routing layout of its own experts from that worker's top-k ids, and runs the grouped expert
// MLPs reading the tokens straight from the attention worker's device memory; the grouped
// partial sums stay on this device, where the attention worker's combine reads them.
//
// Buffers (layout, activations, outputs) per (source, micro-batch), sized at construction.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "roles/expert_unit_handler.h"
#include "roles/peer_message.h"
#include "roles/weights.h"

namespace msi {

class PeerUnitHandler final : public ExpertUnitHandler {
 public:
  PeerUnitHandler(const ModelConfig& config, Backend& backend, StackedExpertWeights weights, int n_sources,
                  int64_t max_tokens, int max_micro_batches);

  Status take(int source, const comm::MessageHeader& header, std::span<const std::byte> payload) override;
  Status run(int layer, std::span<const std::span<std::byte>> replies,
             std::span<comm::MessageHeader> reply_headers) override;
  int64_t unit_rows() const override;

 private:
  struct Slot {
    OwnedTensor expert_offsets, row_token, row_gate, token_rows, tiles, act, y;
    MoeLayout layout;
    std::unique_ptr<DeviceEvent> done;
  };
  struct Taken {
    int64_t n = 0;
    int mb = 0;
    PeerDispatch msg;
  };

  const ModelConfig& config_;
  Backend& backend_;
  StackedExpertWeights weights_;
  int64_t max_tokens_;
  OwnedTensor slot_of_expert_;
  std::vector<std::vector<Slot>> slots_;  // [source][micro-batch]
  std::vector<Taken> taken_;
};

}  // namespace msi

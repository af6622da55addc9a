// PeerUnitHandler: the expert side of the peer transport (peer_message.h). For each attention
// worker's message of a unit it waits (on the device) for the tokens to be written, computes the
// routing layout of its own experts from that worker's top-k ids, and runs the grouped expert
// MLPs on them. The tokens are copied over once per unit (one device-to-device copy): the grouped
// GEMMs read each token row once per column block, which over a peer link (not cached in this
// device's L2) costs several times the copy. The grouped partial sums stay on this device, where
// the attention worker's combine reads each row once.
//
// Buffers (layout, activations, outputs) per (source, micro-batch), sized at construction.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "roles/expert_unit_handler.h"
#include "roles/moe_buffers.h"
#include "roles/peer_memory.h"
#include "roles/peer_message.h"
#include "roles/weights.h"

namespace msi {

class PeerUnitHandler final : public ExpertUnitHandler {
 public:
  PeerUnitHandler(const ModelConfig& config, Backend& backend, StackedExpertWeights weights, int n_sources,
                  int64_t max_tokens, int max_micro_batches, bool interprocess = false,
                  std::vector<int32_t> expert_replica = {});

  // Processes (interprocess = true): what this handler's replies point into (every slot's grouped
  // partial sums and token rows) and the events they name, for export_for_peers; then the attention
  // workers' maps (one per source, in order) before the server runs. Threads need neither.
  std::vector<Tensor> exported_allocations() const;
  std::vector<DeviceEvent*> events() const;
  void set_peers(std::vector<PeerMemoryMap> peers) { peers_ = std::move(peers); }

  Status take(int source, const comm::MessageHeader& header, std::span<const std::byte> payload) override;
  void wait_inputs() override;
  Status run(int layer, std::span<const std::span<std::byte>> replies,
             std::span<comm::MessageHeader> reply_headers) override;
  int64_t unit_rows() const override;
  Backend* device_backend() override { return &backend_; }

  // Profiling (benchmarks; each unit then waits for its compute on the host): while on, the
  // device time of every unit's expert compute is added to busy_ms(). Switch between steps; read
  // after the server stopped. (The load per expert is counted by the attention side:
  // AttentionWorker::take_expert_counts.)
  void set_profile(bool on) { profile_.store(on); }
  double busy_ms() const { return busy_ms_; }

 private:
  struct Slot {
    MoeUnitBuffers buf;
    OwnedTensor hidden;  // [max_tokens, hidden]: the unit's tokens, copied over once
    std::unique_ptr<DeviceEvent> done;
  };
  struct Taken {
    int64_t n = 0;
    int mb = 0;
    PeerDispatch msg;  // addresses already in this process
  };
  const PeerMemoryMap& peer(int source) const {
    return peers_.empty() ? identity_ : peers_[static_cast<size_t>(source)];
  }

  const ModelConfig& config_;
  Backend& backend_;
  StackedExpertWeights weights_;
  int64_t max_tokens_;
  OwnedTensor slot_of_expert_;
  OwnedTensor expert_replica_;  // ExpertPlacement::replica_table, or empty: no replicated expert
  std::vector<std::vector<Slot>> slots_;  // [source][micro-batch]
  std::vector<Taken> taken_;
  bool waited_ = false;  // wait_inputs() ran for the taken unit
  std::atomic<bool> profile_{false};
  std::unique_ptr<DeviceClock> clock_;
  double busy_ms_ = 0.0;
  PeerMemoryMap identity_;
  std::vector<PeerMemoryMap> peers_;  // [n_sources]; empty: the identity
};

}  // namespace msi

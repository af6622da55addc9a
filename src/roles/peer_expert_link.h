// PeerExpertLink: an attention worker's ExpertLink over the peer transport (peer_message.h). send()
// marks the unit's tokens written (a device event) and tells every expert worker where they are;
// receive() waits for each reply, makes the device wait for the expert's event, and adds that
// worker's grouped partial sums — read straight from its device — into the MoE output. The host
// never waits for a device here; the mailboxes carry a few words per unit.
// One thread drives a link.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/m2n.h"
#include "model/config.h"
#include "roles/expert_link.h"
#include "roles/peer_memory.h"

namespace msi {

class PeerExpertLink final : public ExpertLink {
 public:
  PeerExpertLink(const ModelConfig& config, Backend& backend, std::unique_ptr<comm::M2NSender> dispatch,
                 std::unique_ptr<comm::M2NReceiver> combine, int n_expert_workers, int max_micro_batches,
                 bool interprocess = false);

  // Processes (interprocess = true): the events this link names in its messages, for
  // export_for_peers, and then the expert workers' maps (one per worker, in order), before the
  // first send. Threads need neither.
  std::vector<DeviceEvent*> events() const;
  void set_peers(std::vector<PeerMemoryMap> peers) { peers_ = std::move(peers); }

  Status send(const UnitId& unit, const Tensor& hidden, const Tensor& topk_ids, const Tensor& topk_weights,
              uint32_t flags) override;
  Result<uint32_t> receive(const UnitId& unit, const Tensor& out) override;
  void set_patient(bool patient) override { patient_ = patient; }

 private:
  const ModelConfig& config_;
  Backend& backend_;
  std::unique_ptr<comm::M2NSender> dispatch_;
  std::unique_ptr<comm::M2NReceiver> combine_;
  int n_dests_;
  std::vector<std::unique_ptr<DeviceEvent>> ready_;  // per micro-batch
  std::vector<int64_t> sent_tokens_;                 // per micro-batch: the unit in flight
  std::vector<UnitId> sent_unit_;
  bool patient_ = false;
  const PeerMemoryMap& peer(int d) const { return peers_.empty() ? identity_ : peers_[static_cast<size_t>(d)]; }
  PeerMemoryMap identity_;
  std::vector<PeerMemoryMap> peers_;  // [n_expert_workers]; empty: the identity
};

}  // namespace msi

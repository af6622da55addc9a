// ExpertServer: one expert worker's side of the M2N protocol. It takes the units of every step in
// order — for each MoE layer, for each micro-batch — waits for the dispatch message of each of the
// M attention workers, has its ExpertUnitHandler run the experts on all of them at once, and
// replies to each source in its combine mailbox (written in place, no staging copy).
//
// Idle steps and termination: the first unit of a step (first MoE layer, micro-batch 0) carries
// kFlagIdle from every attention worker that has nothing to do (plus kFlagShutdown once it never
// will). When all M are idle the step ends at that unit: the server replies kFlagAllIdle, or
// kFlagStop and returns when all M shut down. A silent or dead attention worker is an error naming
// it (M2N timeouts).
//
// With a timeline, the server records host spans (waits, compute) and, when its handler computes
// on a device (ExpertUnitHandler::device_backend), device spans of every unit with rows: when the
// device ran its experts (SpanKind::kExpertCompute; the device's wait for the unit's tokens is
// enqueued before the span begins, ExpertUnitHandler::wait_inputs). They are
// resolved into the timeline at step boundaries and when run() returns OK.
// One thread drives a server; it constructs the server too (the device timeline's anchor waits
// for the handler's stream).
#pragma once

#include <memory>
#include <vector>

#include "comm/m2n.h"
#include "model/config.h"
#include "pipeline/timeline.h"
#include "roles/device_timeline.h"
#include "roles/expert_unit_handler.h"
#include "roles/moe_message.h"

namespace msi {

class ExpertServer {
 public:
  ExpertServer(const ModelConfig& config, ExpertUnitHandler& handler,
               std::unique_ptr<comm::M2NReceiver> dispatch,
               std::unique_ptr<comm::M2NSender> combine, int n_attention_workers,
               int n_micro_batches, Timeline* timeline);

  // Serves steps until every attention worker is idle (OK) or a peer fails (its error).
  Status run();

 private:
  // Serves one unit; on the first unit of a step where every source is idle, replies kFlagAllIdle
  // (the step ends there: *idle_step) or, when every source also shut down, kFlagStop (*stop).
  // `patient`: wait for the unit's messages without a deadline.
  Status serve_unit(const UnitId& unit, bool patient, bool* stop, bool* idle_step);

  const ModelConfig& config_;
  ExpertUnitHandler& handler_;
  std::unique_ptr<comm::M2NReceiver> dispatch_;
  std::unique_ptr<comm::M2NSender> combine_;
  int n_sources_;
  int n_micro_batches_;
  Timeline* timeline_;
  std::unique_ptr<DeviceTimeline> device_;  // with a timeline and a device handler
  std::vector<int> moe_layers_;
  std::vector<comm::MessageHeader> headers_;
  std::vector<std::span<std::byte>> replies_;
  bool after_idle_step_ = false;
};

}  // namespace msi

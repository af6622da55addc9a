// ExpertUnitHandler: what an expert server does with one unit. ExpertServer owns the protocol —
// the messages of every attention worker, idle steps, the replies — and a handler owns the
// payload format and the compute: HostUnitHandler (tokens in host mailboxes, the CPU expert
// worker) or PeerUnitHandler (tokens read straight from the attention worker's device).
#pragma once

#include <cstddef>
#include <span>

#include "comm/m2n.h"
#include "core/status.h"

namespace msi {

class Backend;

class ExpertUnitHandler {
 public:
  virtual ~ExpertUnitHandler() = default;
  // Checks and keeps source s's dispatch message of the current unit; its payload stays valid
  // until run() returns.
  virtual Status take(int source, const comm::MessageHeader& header,
                      std::span<const std::byte> payload) = 0;
  // Makes the device wait (on its stream, not the host) until every taken source's inputs are
  // written, before the unit's compute is enqueued — so that a device-timed span begun after this
  // covers compute only. run() calls it itself if the caller did not.
  virtual void wait_inputs() {}
  // Computes the unit of MoE layer `layer` over every source taken, writing source s's reply
  // payload into replies[s] (its combine mailbox) and setting reply_headers[s].n_tokens and
  // .payload_bytes. Errors name what was wrong.
  virtual Status run(int layer, std::span<const std::span<std::byte>> replies,
                     std::span<comm::MessageHeader> reply_headers) = 0;
  // Rows of compute in the current unit (for the timeline).
  virtual int64_t unit_rows() const = 0;
  // The backend whose stream run() enqueues the unit's compute on, for device-timed spans
  // (roles/device_timeline.h); nullptr when run() computes on the host before returning.
  virtual Backend* device_backend() { return nullptr; }
};

}  // namespace msi

// Internal to comm/: the endpoints and the transport shared by every transport whose region is
// host memory both sides can address (inproc: a heap buffer; shm: a MAP_SHARED mapping). The
// transports only make the RegionMemory and say whether endpoints record their pid.
//
// Each endpoint keeps its per-peer message counters locally (the k-th message of a pair uses
// mailbox k % n_slots), sized when it is opened; nothing is allocated afterwards except the text
// of an error.
//
// Thread-safety: as in m2n.h. The transport's open_* may be called from any thread (opening is a
// compare-exchange on the region's endpoint state).
#pragma once

#include <memory>

#include "comm/m2n.h"
#include "comm/mailbox.h"

namespace msi::comm::detail {

class MailboxTransport : public M2NTransport {
 public:
  // `record_pid`: endpoints store getpid() at open so peers in other processes can tell when
  // this process is gone; off for inproc (liveness by the closed flag only).
  MailboxTransport(M2NOptions options, std::shared_ptr<RegionMemory> memory, bool record_pid)
      : options_(std::move(options)), memory_(std::move(memory)), record_pid_(record_pid) {}

  const M2NOptions& options() const override { return options_; }
  // InvalidArgument if the index is out of range or was already opened (by any process).
  Result<std::unique_ptr<M2NSender>> open_sender(int index) override;
  Result<std::unique_ptr<M2NReceiver>> open_receiver(int index) override;

 private:
  // Range check, then marks the endpoint opened (once, across processes) and records the pid.
  Status claim(const Region& region, bool is_sender, int index);

  M2NOptions options_;
  std::shared_ptr<RegionMemory> memory_;
  bool record_pid_;
};

}  // namespace msi::comm::detail

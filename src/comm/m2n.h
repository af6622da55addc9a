// The M2N library: a group of M senders and N receivers that move variable-size messages, each
// addressed by a unit (step, layer, micro-batch), with no allocation, no group setup and no
// host-side copy beyond the one into the receiver-visible buffer. msinfer uses two groups per
// deployment: dispatch (M attention workers → N expert workers) and combine (N → M).
//
// Memory: for every ordered pair (sender s, receiver r) a ring of `n_slots` mailboxes, each a
// header plus `max_payload_bytes` of payload, all laid out in one region sized by
// m2n_region_bytes() at setup. The k-th message from s to r uses mailbox k % n_slots of the pair;
// the receiver reads the pair's messages in the same order (FIFO per pair; pairs are independent,
// so receivers may wait on senders in any order).
//
// Waits (a free mailbox for acquire, a message for receive) are bounded by `timeout`; a peer that
// closed its endpoint or whose process is gone is an Unavailable error naming it; a silent peer is
// a DeadlineExceeded error naming it and the unit. Nothing here blocks forever.
//
// Transports (comm/transports/, one file each): inproc (threads of one process, heap memory) and
// shm (processes of one host, POSIX shared memory). GPU peer-to-peer, copy-engine and NCCL
// transports implement the same endpoint interfaces; a multi-host bootstrap (comm/bootstrap.h,
// later) exchanges their handles once.
//
// Thread-safety: an endpoint is used by one thread at a time; different endpoints of a group may
// be used concurrently from different threads or processes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace msi::comm {

// The address of one message: what unit of work it belongs to.
struct UnitAddr {
  int64_t step = 0;
  int32_t layer = 0;
  int32_t micro_batch = 0;
  bool operator==(const UnitAddr&) const = default;
};

// Metadata that travels in the mailbox in front of the payload.
struct MessageHeader {
  UnitAddr unit;
  int64_t n_tokens = 0;        // rows described by the payload (0 allowed)
  uint64_t payload_bytes = 0;  // ≤ max_payload_bytes
  uint32_t flags = 0;          // free for the caller (e.g. "this sender is idle")
};

struct Message {
  MessageHeader header;
  std::span<const std::byte> payload;  // valid until release()
};

struct M2NOptions {
  std::string name = "m2n";           // the group, in messages ("dispatch")
  std::string sender_label = "sender";      // how to name a sender in errors ("attention worker")
  std::string receiver_label = "receiver";  // ("expert worker")
  int n_senders = 1;                  // M
  int n_receivers = 1;                // N
  int n_slots = 4;                    // messages in flight per (sender, receiver) pair
  size_t max_payload_bytes = 0;       // per message
  std::chrono::milliseconds timeout{30000};
};

// Bytes of the region (control block + all mailboxes) for `options`; every mailbox and payload
// starts on a 64-byte boundary.
size_t m2n_region_bytes(const M2NOptions& options);

class M2NSender {
 public:
  virtual ~M2NSender() = default;  // marks the endpoint closed: waiting receivers fail fast
  virtual int index() const = 0;
  // Waits until the next mailbox of the pair (this sender → dst) is free and returns its payload
  // buffer (max_payload_bytes). Write the payload there, then commit(). Does not allocate.
  virtual Result<std::span<std::byte>> acquire(int dst) = 0;
  // Publishes the acquired mailbox to dst. InvalidArgument if payload_bytes exceeds the capacity
  // or nothing was acquired for dst.
  virtual Status commit(int dst, const MessageHeader& header) = 0;
  // acquire + copy + commit, for callers that hold the payload elsewhere.
  Status send(int dst, const MessageHeader& header, std::span<const std::byte> payload);
};

class M2NReceiver {
 public:
  virtual ~M2NReceiver() = default;  // marks the endpoint closed: waiting senders fail fast
  virtual int index() const = 0;
  // Waits for the next message from src. If `expected` is given, a message of another unit is a
  // protocol error (Internal) naming both units. The payload stays valid until release(src).
  virtual Result<Message> receive(int src, const UnitAddr* expected = nullptr) = 0;
  // Frees the mailbox of the last message received from src for the sender's next message.
  virtual void release(int src) = 0;
};

// A group's transport: makes its endpoints. Each endpoint index is opened once.
class M2NTransport {
 public:
  virtual ~M2NTransport() = default;
  virtual const M2NOptions& options() const = 0;
  virtual Result<std::unique_ptr<M2NSender>> open_sender(int index) = 0;
  virtual Result<std::unique_ptr<M2NReceiver>> open_receiver(int index) = 0;
};

// Threads of one process; the region lives on the heap of the transport object, which must
// outlive its endpoints.
Result<std::unique_ptr<M2NTransport>> make_inproc_transport(const M2NOptions& options);

// Processes of one host. create_shm_transport makes the POSIX shared-memory segment `shm_name`
// ("/msinfer-1234-dispatch") and unlinks it when destroyed; open_shm_transport attaches to an
// existing one and checks that its options match. Each process opens only its own endpoints; its
// pid is recorded so peers notice when it dies.
Result<std::unique_ptr<M2NTransport>> create_shm_transport(const std::string& shm_name,
                                                           const M2NOptions& options);
Result<std::unique_ptr<M2NTransport>> open_shm_transport(const std::string& shm_name,
                                                         const M2NOptions& options);

}  // namespace msi::comm

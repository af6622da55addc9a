// Internal to comm/: the byte layout of an M2N region and the wait/publish protocol on its
// mailboxes, shared by the inproc and shm transports (which differ only in who owns the memory
// and whether endpoints record a pid).
//
// Region layout (every part starts on a 64-byte boundary; the base must be 64-byte aligned):
//   ControlBlock                                   64 bytes
//   EndpointState [n_senders + n_receivers]        64 bytes each (senders first)
//   mailboxes [n_senders][n_receivers][n_slots]    mailbox_stride bytes each, where
//     mailbox_stride = 64 (MailboxHeader) + round_up(max_payload_bytes, 64)
//
// Everything in the region is a plain integer field accessed through std::atomic_ref, so the
// region is valid whether it was zeroed by ftruncate in another process or by memset here.
//
// Protocol per mailbox: state 0 = empty (the sender may write it), 1 = full (the receiver may
// read it). The sender writes payload and header, then stores state = 1; the receiver reads, then
// stores state = 0. Each side wakes the other through a futex on `state`, but only when the other
// side announced itself in `n_waiters` (the stores and loads are seq_cst, so either the waiter
// sees the new state or the publisher sees the waiter).
//
// Thread-safety: a mailbox has exactly one writer of each transition (its sender publishes, its
// receiver releases); endpoint state fields are atomics. Region is a view: copyable, owns nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "comm/m2n.h"
#include "core/status.h"

namespace msi::comm::detail {

inline constexpr uint64_t kRegionMagic = 0x314e32'4d49534dull;  // "MSIM2N1" little-endian
inline constexpr uint32_t kRegionVersion = 1;
inline constexpr size_t kRegionAlign = 64;

inline constexpr uint32_t kMailboxEmpty = 0;
inline constexpr uint32_t kMailboxFull = 1;

static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<int32_t>::is_always_lock_free);
static_assert(std::is_trivially_copyable_v<MessageHeader>);

// The first 64 bytes. `magic` is written last by the creator (release), so an opener that sees it
// sees the rest. The options copy is what an opener verifies; `timeout_ms` is informational only
// (each process may wait as long as it likes).
struct alignas(kRegionAlign) ControlBlock {
  uint64_t magic;
  uint32_t version;
  int32_t n_senders;
  int32_t n_receivers;
  int32_t n_slots;
  uint64_t max_payload_bytes;
  uint64_t region_bytes;
  int64_t timeout_ms;
};
static_assert(sizeof(ControlBlock) == kRegionAlign);

// One per endpoint. `opened` is claimed once (compare-exchange 0 → 1); `pid` is the opener's
// process id, 0 when it is not opened or lives in the same process as every peer (inproc), so
// that liveness is judged by `closed` alone.
struct alignas(kRegionAlign) EndpointState {
  uint32_t opened;
  uint32_t closed;
  int32_t pid;
};
static_assert(sizeof(EndpointState) == kRegionAlign);

// In front of every payload.
struct alignas(kRegionAlign) MailboxHeader {
  uint32_t state;      // kMailboxEmpty / kMailboxFull; the futex word
  uint32_t n_waiters;  // endpoints sleeping (or about to) on `state`
  MessageHeader header;
};
static_assert(sizeof(MailboxHeader) == kRegionAlign);

// Byte offsets and strides of a region; computed once from validated options.
struct RegionLayout {
  int n_senders = 0;
  int n_receivers = 0;
  int n_slots = 0;
  size_t max_payload_bytes = 0;
  size_t endpoints_offset = 0;  // = sizeof(ControlBlock)
  size_t mailboxes_offset = 0;
  size_t mailbox_stride = 0;  // header + padded payload
  size_t total_bytes = 0;
};

// InvalidArgument if the options cannot describe a group (a count below 1, a negative timeout,
// sizes that overflow).
Result<RegionLayout> region_layout(const M2NOptions& options);

// A view of a region in memory owned elsewhere.
class Region {
 public:
  Region() = default;
  // `process_shared`: peers may live in other processes (selects non-private futexes).
  Region(std::byte* base, const RegionLayout& layout, bool process_shared)
      : base_(base), layout_(layout), process_shared_(process_shared) {}

  const RegionLayout& layout() const { return layout_; }
  bool process_shared() const { return process_shared_; }
  std::byte* base() const { return base_; }

  ControlBlock& control() const { return *reinterpret_cast<ControlBlock*>(base_); }
  EndpointState& sender_state(int s) const { return endpoint(s); }
  EndpointState& receiver_state(int r) const { return endpoint(layout_.n_senders + r); }
  // The mailbox used by the k-th message from s to r.
  MailboxHeader& mailbox(int s, int r, uint64_t k) const {
    return *reinterpret_cast<MailboxHeader*>(mailbox_bytes(s, r, k));
  }
  std::byte* payload(int s, int r, uint64_t k) const {
    return mailbox_bytes(s, r, k) + sizeof(MailboxHeader);
  }

  // Creator only: zero the control block, endpoint states and mailbox headers, then write the
  // control block (magic last, with release).
  void initialize(const M2NOptions& options) const;

 private:
  EndpointState& endpoint(int i) const {
    return *reinterpret_cast<EndpointState*>(base_ + layout_.endpoints_offset +
                                             static_cast<size_t>(i) * sizeof(EndpointState));
  }
  std::byte* mailbox_bytes(int s, int r, uint64_t k) const {
    const size_t ring =
        static_cast<size_t>(s) * static_cast<size_t>(layout_.n_receivers) + static_cast<size_t>(r);
    const size_t slot = static_cast<size_t>(k % static_cast<uint64_t>(layout_.n_slots));
    return base_ + layout_.mailboxes_offset +
           (ring * static_cast<size_t>(layout_.n_slots) + slot) * layout_.mailbox_stride;
  }

  std::byte* base_ = nullptr;
  RegionLayout layout_;
  bool process_shared_ = false;
};

// Owns the memory behind a Region (a heap buffer, a shared mapping). Endpoints hold it through a
// shared_ptr so the memory outlives every endpoint, whatever the destruction order.
class RegionMemory {
 public:
  virtual ~RegionMemory() = default;
  const Region& region() const { return region_; }

 protected:
  Region region_;
};

// Who is waiting for whom, to word errors: "m2n 'dispatch': timed out after 200 ms waiting for
// expert worker 2 to free a mailbox (message 17 from attention worker 0)".
struct WaitContext {
  const M2NOptions* options = nullptr;
  bool self_is_sender = true;
  int self_index = 0;
  int peer_index = 0;
  uint64_t message_index = 0;          // k: the message's position in the pair's FIFO
  const UnitAddr* expected = nullptr;  // receive only
};

// Waits until the mailbox's state equals `want`: spins briefly, then sleeps on the futex in short
// slices, checking between slices the deadline (DeadlineExceeded), the peer's closed flag and its
// process (Unavailable). A state that already equals `want` wins over a dead or closed peer, so
// messages published before the peer went away are still delivered. Blocks; never allocates on
// the OK path.
Status wait_for_state(const Region& region, MailboxHeader& mailbox, uint32_t want,
                      EndpointState& peer, const WaitContext& context);

// Stores the new state (seq_cst, after the payload/header writes) and wakes a waiter if any.
void publish_state(const Region& region, MailboxHeader& mailbox, uint32_t state);

// Wakes every waiter on `mailbox` (used when an endpoint closes, so peers notice at once).
void wake_waiters(const Region& region, MailboxHeader& mailbox);

// "step 3, layer 1, micro-batch 0"
std::string unit_to_string(const UnitAddr& unit);

// "m2n 'dispatch'"
std::string group_prefix(const M2NOptions& options);

}  // namespace msi::comm::detail

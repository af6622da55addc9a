// How a worker reaches the memory and events that a peer names in its peer messages
// (peer_message.h). Workers that are threads of one process share an address space, and the map is
// the identity. Workers in different processes (CUDA IPC) exchange, once at start-up, what each
// exports — the allocations its messages point into and the events they name (PeerExports, passed
// through the bootstrap rendezvous) — and each side imports the other's into a PeerMemoryMap that
// translates every address the peer sends into this process's mapping of it.
//
// Start-up only: exporting and importing open device handles; translating is a lookup in a few
// entries and allocates nothing. A map is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/status.h"

namespace msi {

// What one worker offers its peers: its allocations (by their address in its own process) and its
// events, each with the backend's opaque handle.
struct PeerExports {
  struct Memory {
    uint64_t base = 0;
    uint64_t bytes = 0;
    std::vector<std::byte> handle;
  };
  struct Event {
    uint64_t address = 0;
    std::vector<std::byte> handle;
  };
  std::vector<Memory> memory;
  std::vector<Event> events;

  std::vector<std::byte> serialize() const;  // JSON text, handles in hex
  static Result<PeerExports> parse(std::span<const std::byte> bytes);
};

// Exports `allocations` (each the whole of an alloc() buffer) and `events` (from
// make_shared_event).
Result<PeerExports> export_for_peers(Backend& backend, std::span<const Tensor> allocations,
                                     std::span<DeviceEvent* const> events);

class PeerMemoryMap {
 public:
  PeerMemoryMap() = default;  // the identity: a peer in this process
  // Imports every export of `peer` (named in errors, e.g. "expert worker 1") into `backend`.
  static Result<PeerMemoryMap> import(Backend& backend, const PeerExports& exports,
                                      std::string peer);

  // Entries, for import and tests: the peer's [remote_base, remote_base + bytes) is at local_base.
  void add_memory(uint64_t remote_base, uint64_t bytes, const void* local_base);
  void add_event(uint64_t remote_address, std::unique_ptr<DeviceEvent> local);

  bool is_identity() const { return !imported_; }
  // This process's address of the peer's [remote, remote + bytes); an error when the range is not
  // inside one exported allocation.
  Result<const void*> memory(const void* remote, size_t bytes) const;
  Result<DeviceEvent*> event(const DeviceEvent* remote) const;

 private:
  struct Range {
    uint64_t remote_base, bytes;
    const std::byte* local_base;
  };
  struct Opened {
    uint64_t remote;
    std::unique_ptr<DeviceEvent> local;
  };
  bool imported_ = false;
  std::string peer_;
  std::vector<Range> ranges_;
  std::vector<Opened> events_;
};

}  // namespace msi

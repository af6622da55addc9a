// Bootstrap: a TCP rendezvous store that processes on one or many hosts use once, at start-up, to
// exchange small opaque values (an NCCL unique id, CUDA IPC memory and event handles, addresses)
// and to line up with barriers. It is not a data path.
//
// Roles: rank 0 calls Rendezvous::serve(), which listens on host:port, runs one server thread that
// holds the key-value store, and connects a client to it, so rank 0 uses the same operations as
// everyone else. Ranks 1..world_size-1 call Rendezvous::connect(), which retries until the server
// listens (workers may start first) or the timeout passes.
//
// Server: one thread with a poll() loop over non-blocking sockets (the listening socket, an
// eventfd to wake it for shutdown, and every client), so many clients cost no extra threads and a
// silent or hostile peer blocks nothing. A pending get() is parked on the server and answered when
// the key is set, when its deadline passes, or when the server shuts down (every parked get then
// fails with Unavailable).
//
// Wire protocol (little-endian; version kBootstrapProtocolVersion): the client opens with a hello
// {magic "MSI-RDZV", u32 version, i32 rank, i32 world_size}; the server checks it and answers
// {magic, u32 version, u32 code, u32 message bytes, message}. A peer whose first 8 bytes are not
// the magic (an HTTP client, a port scanner) is dropped without an answer. Then requests are
// frames {u32 frame bytes, u32 seq, u32 op, u64 arg, u32 key bytes, u32 value bytes, key, value}
// and responses {u32 frame bytes, u32 seq, u32 code, u64 arg, u32 value bytes, value}; a frame
// that breaks a limit (key > kMaxKeyBytes, value > kMaxValueBytes, unknown op) closes that
// connection only.
//
// Owns: the client socket; for rank 0 also the listening socket, the server thread and the store.
// All are released by the destructor (the server thread is joined). The store keeps every value
// until then (there is no delete: a bootstrap exchanges kilobytes, once).
//
// Thread-safety: internally locked. Any thread may call any operation, but calls on one object
// are serialized: a get() that waits holds the connection, and other threads' calls wait behind
// it (bounded by its timeout). Threads that must wait concurrently each connect() their own
// Rendezvous (the same rank may connect more than once).
//
// Blocking and timeouts: every operation may block and allocates. Each is bounded by
// options.timeout (all_gather() and barrier() by one timeout for the whole call): a key that is
// not set in time is DeadlineExceeded naming the key and this rank; a server that goes away (its
// process died, it was destroyed) is Unavailable naming its address, and the object then fails
// every later call fast. Nothing here blocks forever; no signal (SIGPIPE) is raised.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace msi::comm {

inline constexpr uint32_t kBootstrapProtocolVersion = 1;
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxValueBytes = size_t{1} << 20;  // 1 MiB

struct BootstrapOptions {
  // serve(): the address to listen on ("0.0.0.0" for every IPv4 interface, "::" for IPv6).
  // connect(): the server's address; an IPv4/IPv6 literal or a host name (getaddrinfo).
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port, serve() only (port() reports the one picked)
  int rank = 0;  // 0 ≤ rank < world_size; serve() is rank 0
  int world_size = 1;
  std::chrono::milliseconds timeout{30000};  // bounds every wait, including connecting
};

// Reads the launcher variables MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (core/env.h) into
// options with the default timeout. All four must be set; a missing one is NotFound and a
// malformed one (not a number, a port outside 1..65535, RANK ≥ WORLD_SIZE) is InvalidArgument,
// each naming the variable and its value.
Result<BootstrapOptions> bootstrap_options_from_env();

// Where a supervisor that launches its own workers (the engine's process deployment: rank 0 of a
// world of `world_size`) serves its rendezvous: MASTER_ADDR:MASTER_PORT when both are set (e.g.
// "0.0.0.0" to accept peers on other hosts), else 127.0.0.1 on an ephemeral port. RANK and
// WORLD_SIZE are not read: the supervisor numbers its own workers. One of the two set without the
// other, or a malformed port, is InvalidArgument naming the variable.
Result<BootstrapOptions> supervisor_bootstrap_options(int world_size);
// The address a worker on this host connects to for a server listening on `host`: a wildcard
// ("0.0.0.0", "::", "") becomes the loopback address; anything else is itself.
std::string local_connect_host(const std::string& host);

// InvalidArgument unless the options are usable: a host, 0 ≤ port ≤ 65535, 0 ≤ rank <
// world_size, timeout > 0.
Status validate_bootstrap_options(const BootstrapOptions& options);

namespace detail {
class RendezvousServer;
}  // namespace detail

class Rendezvous {
 public:
  // Rank 0: listens on options.host:options.port, starts the server thread, and connects to it.
  // InvalidArgument if options.rank != 0; Unavailable if the address cannot be bound (in use).
  static Result<std::unique_ptr<Rendezvous>> serve(const BootstrapOptions& options);
  // Any rank: connects to the server at options.host:options.port, retrying refused connections
  // until options.timeout passes (DeadlineExceeded naming the address and the last error). A
  // server of another world_size, protocol version, or a peer that is no rendezvous server is an
  // error naming both sides.
  static Result<std::unique_ptr<Rendezvous>> connect(const BootstrapOptions& options);

  // Shuts the server down if this object runs one: parked get()s of other ranks fail with
  // Unavailable. NOTE: rank 0 must outlive everyone's last call (end with a barrier()).
  // A fork()ed child may destroy a Rendezvous it inherited: that closes its copy of the client
  // socket and leaves the parent's server alone. All sockets are close-on-exec.
  ~Rendezvous();
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  int port() const { return port_; }  // the server's port (the one picked for port 0)
  const std::string& address() const { return address_; }  // "host:port", for messages

  // Stores value under key (1..kMaxKeyBytes bytes) and wakes every get() waiting for it; a later
  // set() of the same key replaces the value. InvalidArgument if the key or the value (more than
  // kMaxValueBytes) is too large. Keys beginning with "__" are reserved for barrier().
  Status set(const std::string& key, std::span<const std::byte> value);
  Status set(const std::string& key, std::string_view value);
  // Returns the value of key, waiting until some rank sets it; DeadlineExceeded after
  // options.timeout, naming the key and this rank.
  Result<std::vector<std::byte>> get(const std::string& key);
  // Adds delta to the signed 64-bit counter at key (created as 0) and returns the new value.
  // A counter is a key of its own kind: get() does not see it.
  Result<int64_t> add(const std::string& key, int64_t delta);
  // Returns when all world_size ranks have called barrier(name) for the same time; the same name
  // may be reused (each rank counts its calls). DeadlineExceeded names the barrier and how many
  // ranks arrived.
  Status barrier(const std::string& name);
  // Each rank publishes `mine` under "<key>/<rank>" and gets everyone's: the result is
  // [world_size] values in rank order, this rank's included.
  Result<std::vector<std::vector<std::byte>>> all_gather(const std::string& key,
                                                         std::span<const std::byte> mine);

 private:
  using Clock = std::chrono::steady_clock;
  struct Frame;

  Rendezvous(const BootstrapOptions& options, int port, int fd);
  static Result<std::unique_ptr<Rendezvous>> connect_to(const BootstrapOptions& options,
                                                        const std::string& connect_host);

  // One request and its response, under mu_; the caller holds mu_.
  Result<Frame> call(uint32_t op, const std::string& key, uint64_t arg,
                     std::span<const std::byte> value, Clock::time_point deadline,
                     const std::string& what);
  Result<std::vector<std::byte>> get_until(const std::string& key, Clock::time_point deadline);
  Result<int64_t> add_until(const std::string& key, int64_t delta, Clock::time_point deadline);
  Status set_until(const std::string& key, std::span<const std::byte> value,
                   Clock::time_point deadline);
  Status broken_status(const std::string& what) const;

  BootstrapOptions options_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<detail::RendezvousServer> server_;  // rank 0 from serve() only

  std::mutex mu_;  // guards everything below
  int fd_ = -1;
  uint32_t next_seq_ = 1;
  std::vector<std::byte> in_;  // received bytes not yet parsed (a partial response survives a
                               // timeout, so the stream never desynchronizes)
  std::string broken_;         // why the connection is unusable; empty while it is fine
  std::map<std::string, int64_t> barrier_calls_;  // name → calls so far, for reuse
};

}  // namespace msi::comm

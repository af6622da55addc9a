// Internal to comm/: what the bootstrap client (bootstrap.cc) and its server
// (bootstrap_server.cc) share: the wire constants and frame encoding of the protocol described in
// bootstrap.h, the socket helpers both sides use, and the declaration of the server that
// Rendezvous::serve() starts and owns.
//
// Everything here is stateless except RendezvousServer, whose contract is in bootstrap.h (the
// "Server" paragraph): start() listens and runs one thread; the destructor wakes it, fails every
// parked get() with a shutdown code and joins it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "comm/bootstrap.h"
#include "core/status.h"

namespace msi::comm::detail {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Wire constants (see bootstrap.h for the message layouts).
inline constexpr std::array<char, 8> kMagic = {'M', 'S', 'I', '-', 'R', 'D', 'Z', 'V'};
inline constexpr size_t kHelloBytes = 8 + 4 + 4 + 4;       // magic, version, rank, world_size
inline constexpr size_t kHelloReplyBytes = 8 + 4 + 4 + 4;  // magic, version, code, message bytes
inline constexpr size_t kMaxHelloMessageBytes = 4096;
inline constexpr size_t kRequestHeaderBytes = 4 + 4 + 4 + 8 + 4 + 4;  // frame bytes .. value bytes
inline constexpr size_t kResponseHeaderBytes = 4 + 4 + 4 + 8 + 4;     // frame bytes .. value bytes
// "frame bytes" counts the bytes after its own field.
inline constexpr size_t kMaxRequestFrameBytes =
    kRequestHeaderBytes - 4 + kMaxKeyBytes + kMaxValueBytes;
inline constexpr size_t kMaxResponseFrameBytes = kResponseHeaderBytes - 4 + kMaxValueBytes;
// A client that does not read its responses is dropped past this much unsent output.
inline constexpr size_t kMaxPendingOutputBytes = 16 * kMaxValueBytes;

enum Op : uint32_t { kOpSet = 1, kOpGet = 2, kOpAdd = 3 };
enum Code : uint32_t { kCodeOk = 0, kCodeTimeout = 1, kCodeShutdown = 2, kCodeRefused = 3 };

inline void put_u32(std::vector<std::byte>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
inline void put_u64(std::vector<std::byte>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
inline void put_bytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
inline void put_magic(std::vector<std::byte>& out) {
  put_bytes(out, std::as_bytes(std::span(kMagic)));
}
inline uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
inline uint64_t load_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
// True if the first min(n, 8) bytes agree with the magic.
inline bool magic_prefix_matches(const std::byte* p, size_t n) {
  return std::memcmp(p, kMagic.data(), std::min(n, kMagic.size())) == 0;
}
inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// Closes the descriptor it holds.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

inline std::string format_address(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for TCP; *retryable is set when the failure may be transient (EAI_AGAIN).
inline Result<AddrInfoPtr> resolve(const std::string& host, int port, bool passive,
                                   bool* retryable) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (retryable != nullptr) *retryable = rc == EAI_AGAIN;
  if (rc != 0) {
    return error(StatusCode::kInvalidArgument, "cannot resolve rendezvous host '{}': {}", host,
                 rc == EAI_SYSTEM ? errno_text(errno) : gai_strerror(rc));
  }
  return AddrInfoPtr(list);
}

inline int remaining_ms(Clock::time_point deadline) {
  const auto now = Clock::now();
  if (now >= deadline) return 0;
  const int64_t ms = std::chrono::ceil<milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

inline void set_socket_options(int fd) {
  const int one = 1;
  // Requests and responses are small and strictly alternate: no Nagle delay.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// The server: one thread, one poll() loop.
class RendezvousServer {
 public:
  static Result<std::unique_ptr<RendezvousServer>> start(const BootstrapOptions& options);

  // Requires owned_by_this_process().
  ~RendezvousServer();

  int port() const { return port_; }
  bool owned_by_this_process() const { return getpid() == owner_pid_; }

 private:
  struct Conn {
    UniqueFd fd;
    std::string peer;
    bool hello_done = false;
    int rank = -1;
    bool closing = false;  // close once `out` is flushed
    bool dead = false;     // close now
    std::vector<std::byte> in;
    std::vector<std::byte> out;
    size_t out_offset = 0;
  };
  struct Waiter {
    uint64_t conn_id;
    uint32_t seq;
    Clock::time_point deadline;
  };

  RendezvousServer(const BootstrapOptions& options, std::string address, int port,
                   UniqueFd listen_fd, UniqueFd wake_fd);

  void run();
  bool accept_clients();
  void read_from(uint64_t id, Conn& c);
  void drop(Conn& c, const std::string& why);
  void handle_input(uint64_t id, Conn& c);
  void handle_set(std::string key, std::span<const std::byte> value, Conn& c, uint32_t seq);
  void handle_get(uint64_t id, Conn& c, uint32_t seq, const std::string& key, uint64_t timeout_ms);
  void respond(Conn& c, uint32_t seq, uint32_t code, uint64_t arg,
               std::span<const std::byte> value);
  void enqueue(Conn& c, std::span<const std::byte> bytes);
  void flush(Conn& c);
  void expire_waiters();
  void sweep();
  void shut_down();

  const int world_size_;
  const std::string address_;
  const int port_;
  const pid_t owner_pid_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<std::thread> thread_;

  // Owned by the server thread.
  std::map<uint64_t, Conn> conns_;
  uint64_t next_conn_id_ = 1;
  std::unordered_map<std::string, std::vector<std::byte>> store_;
  std::unordered_map<std::string, int64_t> counters_;
  std::unordered_map<std::string, std::vector<Waiter>> waiters_;
};

}  // namespace msi::comm::detail

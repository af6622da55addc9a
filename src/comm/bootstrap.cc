#include "comm/bootstrap.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/env.h"
#include "core/logging.h"

namespace msi::comm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Wire constants (see the header for the message layouts).
constexpr std::array<char, 8> kMagic = {'M', 'S', 'I', '-', 'R', 'D', 'Z', 'V'};
constexpr size_t kHelloBytes = 8 + 4 + 4 + 4;       // magic, version, rank, world_size
constexpr size_t kHelloReplyBytes = 8 + 4 + 4 + 4;  // magic, version, code, message bytes
constexpr size_t kMaxHelloMessageBytes = 4096;
constexpr size_t kRequestHeaderBytes = 4 + 4 + 4 + 8 + 4 + 4;  // frame bytes .. value bytes
constexpr size_t kResponseHeaderBytes = 4 + 4 + 4 + 8 + 4;     // frame bytes .. value bytes
// "frame bytes" counts the bytes after its own field.
constexpr size_t kMaxRequestFrameBytes = kRequestHeaderBytes - 4 + kMaxKeyBytes + kMaxValueBytes;
constexpr size_t kMaxResponseFrameBytes = kResponseHeaderBytes - 4 + kMaxValueBytes;
// A client that does not read its responses is dropped past this much unsent output.
constexpr size_t kMaxPendingOutputBytes = 16 * kMaxValueBytes;

enum Op : uint32_t { kOpSet = 1, kOpGet = 2, kOpAdd = 3 };
enum Code : uint32_t { kCodeOk = 0, kCodeTimeout = 1, kCodeShutdown = 2, kCodeRefused = 3 };

void put_u32(std::vector<std::byte>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void put_u64(std::vector<std::byte>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void put_bytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
void put_magic(std::vector<std::byte>& out) { put_bytes(out, std::as_bytes(std::span(kMagic))); }
uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t load_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
// True if the first min(n, 8) bytes agree with the magic.
bool magic_prefix_matches(const std::byte* p, size_t n) {
  return std::memcmp(p, kMagic.data(), std::min(n, kMagic.size())) == 0;
}
std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

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

std::string format_address(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// The peer of a connected socket as "ip:port", for log lines.
std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "an unknown peer";
  char ip[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    return format_address(ip, ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
    return format_address(ip, ntohs(a->sin6_port));
  }
  return "an unknown peer";
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for TCP; *retryable is set when the failure may be transient (EAI_AGAIN).
Result<AddrInfoPtr> resolve(const std::string& host, int port, bool passive, bool* retryable) {
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

int remaining_ms(Clock::time_point deadline) {
  const auto now = Clock::now();
  if (now >= deadline) return 0;
  const int64_t ms = std::chrono::ceil<milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// Waits until fd is ready for `events` (or has an error or hang-up to report).
// DeadlineExceeded at the deadline.
Status wait_fd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return Status::ok();
    if (rc == 0) return Status(StatusCode::kDeadlineExceeded, "timed out");
    if (errno != EINTR) return error(StatusCode::kInternal, "poll: {}", errno_text(errno));
  }
}

// Sends all of `bytes`: Unavailable if the peer is gone, DeadlineExceeded if it stops reading.
Status send_all(int fd, std::span<const std::byte> bytes, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      MSI_RETURN_IF_ERROR(wait_fd(fd, POLLOUT, deadline));
      continue;
    }
    return Status(StatusCode::kUnavailable, n < 0 ? errno_text(errno) : "connection closed");
  }
  return Status::ok();
}

// Appends what is readable now (after waiting for something until the deadline) to `in`.
Status receive_some(int fd, std::vector<std::byte>& in, Clock::time_point deadline) {
  MSI_RETURN_IF_ERROR(wait_fd(fd, POLLIN, deadline));
  std::byte chunk[65536];
  while (true) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      in.insert(in.end(), chunk, chunk + n);
      return Status::ok();
    }
    if (n == 0) return Status(StatusCode::kUnavailable, "connection closed by the server");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();  // spurious wake-up
    return Status(StatusCode::kUnavailable, errno_text(errno));
  }
}

void set_socket_options(int fd) {
  const int one = 1;
  // Requests and responses are small and strictly alternate: no Nagle delay.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Connects to one resolved address by the deadline; an empty UniqueFd (and *why) on failure.
UniqueFd tcp_connect(const addrinfo& ai, Clock::time_point deadline, std::string* why) {
  UniqueFd fd(
      ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol));
  if (fd.get() < 0) {
    *why = fmt::format("socket: {}", errno_text(errno));
    return fd;
  }
  int err = 0;
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS || err == EINTR) {
      const Status ready = wait_fd(fd.get(), POLLOUT, deadline);
      if (!ready.is_ok()) {
        *why =
            ready.code() == StatusCode::kDeadlineExceeded ? "connect timed out" : ready.message();
        return UniqueFd();
      }
      socklen_t len = sizeof(err);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
  }
  if (err != 0) {
    *why = errno_text(err);
    return UniqueFd();
  }
  set_socket_options(fd.get());
  return fd;
}

// Sends the hello on a fresh connection and reads the server's answer; returns any bytes that
// came after it. *retry is set when the connection closed before an answer: a server that is
// starting or restarting.
Result<std::vector<std::byte>> say_hello(int fd, const BootstrapOptions& options,
                                         Clock::time_point deadline, bool* retry) {
  std::vector<std::byte> hello;
  put_magic(hello);
  put_u32(hello, kBootstrapProtocolVersion);
  put_u32(hello, static_cast<uint32_t>(options.rank));
  put_u32(hello, static_cast<uint32_t>(options.world_size));
  Status s = send_all(fd, hello, deadline);
  std::vector<std::byte> in;
  size_t message_bytes = 0;
  uint32_t code = kCodeOk;
  while (s.is_ok() && in.size() < kHelloReplyBytes + message_bytes) {
    s = receive_some(fd, in, deadline);
    if (s.is_ok() && !magic_prefix_matches(in.data(), in.size())) {
      return Status(StatusCode::kUnavailable,
                    "the peer is not a msinfer rendezvous server (bad magic)");
    }
    if (s.is_ok() && in.size() >= kHelloReplyBytes) {
      code = load_u32(in.data() + 12);
      message_bytes = load_u32(in.data() + 16);
      if (message_bytes > kMaxHelloMessageBytes) {
        return Status(StatusCode::kUnavailable, "the peer sent a malformed hello");
      }
    }
  }
  if (s.code() == StatusCode::kDeadlineExceeded) {
    return error(StatusCode::kDeadlineExceeded, "no answer to the hello within {} ms",
                 options.timeout.count());
  }
  if (!s.is_ok()) {
    *retry = true;
    return error(StatusCode::kUnavailable, "hello failed: {}", s.message());
  }
  if (code != kCodeOk) {
    return error(StatusCode::kInvalidArgument, "the server refused the connection: {}",
                 std::string_view(reinterpret_cast<const char*>(in.data() + kHelloReplyBytes),
                                  message_bytes));
  }
  in.erase(in.begin(), in.begin() + static_cast<ptrdiff_t>(kHelloReplyBytes + message_bytes));
  return in;
}

// Parses a whole decimal string into an int in [lo, hi].
Result<int> parse_int_var(const char* name, const std::string& text, int lo, int hi) {
  int v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < lo || v > hi) {
    return error(StatusCode::kInvalidArgument, "{}='{}' is not an integer in {}..{}", name, text,
                 lo, hi);
  }
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The server: one thread, one poll() loop.

namespace detail {

class RendezvousServer {
 public:
  static Result<std::unique_ptr<RendezvousServer>> start(const BootstrapOptions& options) {
    bool retryable = false;
    MSI_ASSIGN_OR_RETURN(AddrInfoPtr list,
                         resolve(options.host, options.port, /*passive=*/true, &retryable));
    const std::string address = format_address(options.host, options.port);
    std::string last_error = "no address";
    int last_errno = 0;
    UniqueFd listen_fd;
    for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
      UniqueFd fd(
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
      if (fd.get() < 0) {
        last_errno = errno;
        last_error = fmt::format("socket: {}", errno_text(errno));
        continue;
      }
      // NOTE: SO_REUSEADDR lets a restarted supervisor take its port back from TIME_WAIT; it
      // does not let two live servers share a port on Linux.
      const int one = 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
        last_errno = errno;
        last_error = fmt::format("bind: {}", errno_text(errno));
        continue;
      }
      if (::listen(fd.get(), SOMAXCONN) != 0) {
        last_errno = errno;
        last_error = fmt::format("listen: {}", errno_text(errno));
        continue;
      }
      listen_fd = std::move(fd);
      break;
    }
    if (listen_fd.get() < 0) {
      return error(
          last_errno == EADDRINUSE ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
          "rendezvous server cannot listen on {}: {}", address, last_error);
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return error(StatusCode::kInternal, "getsockname: {}", errno_text(errno));
    }
    const int port = ss.ss_family == AF_INET6
                         ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port)
                         : ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    UniqueFd wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (wake_fd.get() < 0) return error(StatusCode::kInternal, "eventfd: {}", errno_text(errno));
    auto server = std::unique_ptr<RendezvousServer>(
        new RendezvousServer(options, format_address(options.host, port), port,
                             std::move(listen_fd), std::move(wake_fd)));
    server->thread_ = std::make_unique<std::thread>([s = server.get()] { s->run(); });
    return server;
  }

  // Requires owned_by_this_process().
  ~RendezvousServer() {
    stop_.store(true);
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
    thread_->join();
  }

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
                   UniqueFd listen_fd, UniqueFd wake_fd)
      : world_size_(options.world_size),
        address_(std::move(address)),
        port_(port),
        owner_pid_(getpid()),
        listen_fd_(std::move(listen_fd)),
        wake_fd_(std::move(wake_fd)) {}

  void run() {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;  // conn id of fds[i + 2]
    Clock::time_point accept_paused_until{};
    while (!stop_.load()) {
      fds.clear();
      ids.clear();
      fds.push_back({wake_fd_.get(), POLLIN, 0});
      const bool accepting = Clock::now() >= accept_paused_until;
      fds.push_back({accepting ? listen_fd_.get() : -1, POLLIN, 0});
      for (auto& [id, c] : conns_) {
        const bool has_output = c.out.size() > c.out_offset;
        fds.push_back({c.fd.get(), static_cast<short>(POLLIN | (has_output ? POLLOUT : 0)), 0});
        ids.push_back(id);
      }
      Clock::time_point wake_at = accepting ? Clock::time_point::max() : accept_paused_until;
      for (const auto& [key, list] : waiters_) {
        for (const Waiter& w : list) wake_at = std::min(wake_at, w.deadline);
      }
      const int timeout = wake_at == Clock::time_point::max() ? -1 : remaining_ms(wake_at);
      const int rc = ::poll(fds.data(), fds.size(), timeout);
      if (rc < 0 && errno != EINTR) {
        MSI_LOG_ERROR("rendezvous server {}: poll: {}", address_, errno_text(errno));
        break;
      }
      if (rc > 0) {
        if (fds[0].revents != 0) {
          uint64_t count = 0;
          [[maybe_unused]] const ssize_t n = ::read(wake_fd_.get(), &count, sizeof(count));
        }
        if (fds[1].revents != 0 && !accept_clients()) {
          // Out of descriptors: stop accepting for a moment instead of spinning.
          accept_paused_until = Clock::now() + milliseconds(100);
        }
        for (size_t i = 0; i < ids.size(); ++i) {
          const short ev = fds[i + 2].revents;
          if (ev == 0) continue;
          auto it = conns_.find(ids[i]);
          if (it == conns_.end()) continue;
          if (ev & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) read_from(ids[i], it->second);
        }
      }
      expire_waiters();
      for (auto& [id, c] : conns_) flush(c);
      sweep();
    }
    shut_down();
  }

  // Accepts every pending connection; false if out of descriptors.
  bool accept_clients() {
    while (true) {
      const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        set_socket_options(fd);
        Conn c;
        c.fd = UniqueFd(fd);
        c.peer = peer_name(fd);
        conns_.emplace(next_conn_id_++, std::move(c));
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      MSI_LOG_WARN("rendezvous server {}: accept: {}", address_, errno_text(errno));
      return false;
    }
  }

  // Reads what is there, at most kMaxReadsPerWake chunks, so one busy peer cannot starve the
  // others (poll() reports the rest next round).
  void read_from(uint64_t id, Conn& c) {
    constexpr int kMaxReadsPerWake = 16;
    std::byte chunk[65536];
    for (int reads = 0; !c.dead && reads < kMaxReadsPerWake; ++reads) {
      const ssize_t n = ::recv(c.fd.get(), chunk, sizeof(chunk), 0);
      if (n > 0) {
        c.in.insert(c.in.end(), chunk, chunk + n);
        handle_input(id, c);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.dead = true;  // EOF or a reset: the client is gone
    }
  }

  void drop(Conn& c, const std::string& why) {
    MSI_LOG_WARN("rendezvous server {}: dropping the connection from {}: {}", address_, c.peer,
                 why);
    c.dead = true;
  }

  // Consumes the hello and every complete request in c.in.
  void handle_input(uint64_t id, Conn& c) {
    size_t pos = 0;
    if (!c.hello_done) {
      if (!magic_prefix_matches(c.in.data(), c.in.size())) {
        return drop(c, "not a msinfer rendezvous client (bad magic)");
      }
      if (c.in.size() < kHelloBytes) return;
      const uint32_t version = load_u32(c.in.data() + 8);
      const int rank = static_cast<int32_t>(load_u32(c.in.data() + 12));
      const int world_size = static_cast<int32_t>(load_u32(c.in.data() + 16));
      pos = kHelloBytes;
      std::string refusal;
      if (version != kBootstrapProtocolVersion) {
        refusal = fmt::format("the client speaks protocol version {}, the server {}", version,
                              kBootstrapProtocolVersion);
      } else if (world_size != world_size_) {
        refusal = fmt::format("the client (rank {}) has world_size {}, the server {}", rank,
                              world_size, world_size_);
      } else if (rank < 0 || rank >= world_size_) {
        refusal = fmt::format("rank {} is outside 0..{}", rank, world_size_ - 1);
      }
      std::vector<std::byte> reply;
      put_magic(reply);
      put_u32(reply, kBootstrapProtocolVersion);
      put_u32(reply, refusal.empty() ? kCodeOk : kCodeRefused);
      put_u32(reply, static_cast<uint32_t>(refusal.size()));
      put_bytes(reply, as_bytes(refusal));
      enqueue(c, reply);
      if (!refusal.empty()) {
        MSI_LOG_WARN("rendezvous server {}: refusing {}: {}", address_, c.peer, refusal);
        c.closing = true;
        c.in.clear();
        return;
      }
      c.hello_done = true;
      c.rank = rank;
    }
    while (!c.dead && !c.closing && c.in.size() - pos >= 4) {
      const std::byte* p = c.in.data() + pos;
      const size_t frame_bytes = load_u32(p);
      if (frame_bytes < kRequestHeaderBytes - 4 || frame_bytes > kMaxRequestFrameBytes) {
        return drop(c,
                    fmt::format("rank {} sent a request frame of {} bytes", c.rank, frame_bytes));
      }
      if (c.in.size() - pos < 4 + frame_bytes) break;
      const uint32_t seq = load_u32(p + 4);
      const uint32_t op = load_u32(p + 8);
      const uint64_t arg = load_u64(p + 12);
      const size_t key_bytes = load_u32(p + 20);
      const size_t value_bytes = load_u32(p + 24);
      if (key_bytes > kMaxKeyBytes || value_bytes > kMaxValueBytes ||
          kRequestHeaderBytes - 4 + key_bytes + value_bytes != frame_bytes) {
        return drop(c, fmt::format("rank {} sent a malformed request", c.rank));
      }
      std::string key(reinterpret_cast<const char*>(p + kRequestHeaderBytes), key_bytes);
      std::span<const std::byte> value(p + kRequestHeaderBytes + key_bytes, value_bytes);
      pos += 4 + frame_bytes;
      switch (op) {
        case kOpSet: handle_set(std::move(key), value, c, seq); break;
        case kOpGet: handle_get(id, c, seq, key, arg); break;
        case kOpAdd: {
          int64_t& counter = counters_[key];
          counter += static_cast<int64_t>(arg);
          respond(c, seq, kCodeOk, static_cast<uint64_t>(counter), {});
          break;
        }
        default: return drop(c, fmt::format("rank {} sent an unknown op {}", c.rank, op));
      }
    }
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<ptrdiff_t>(pos));
  }

  void handle_set(std::string key, std::span<const std::byte> value, Conn& c, uint32_t seq) {
    auto& stored = store_[key];
    stored.assign(value.begin(), value.end());
    respond(c, seq, kCodeOk, 0, {});
    auto it = waiters_.find(key);
    if (it == waiters_.end()) return;
    for (const Waiter& w : it->second) {
      auto conn = conns_.find(w.conn_id);
      if (conn != conns_.end()) respond(conn->second, w.seq, kCodeOk, 0, stored);
    }
    waiters_.erase(it);
  }

  void handle_get(uint64_t id, Conn& c, uint32_t seq, const std::string& key, uint64_t timeout_ms) {
    auto it = store_.find(key);
    if (it != store_.end()) return respond(c, seq, kCodeOk, 0, it->second);
    if (timeout_ms == 0) return respond(c, seq, kCodeTimeout, 0, {});
    const auto wait = milliseconds(std::min<uint64_t>(timeout_ms, uint64_t{1} << 40));
    waiters_[key].push_back({id, seq, Clock::now() + wait});
  }

  void respond(Conn& c, uint32_t seq, uint32_t code, uint64_t arg,
               std::span<const std::byte> value) {
    std::vector<std::byte> frame;
    frame.reserve(kResponseHeaderBytes + value.size());
    put_u32(frame, static_cast<uint32_t>(kResponseHeaderBytes - 4 + value.size()));
    put_u32(frame, seq);
    put_u32(frame, code);
    put_u64(frame, arg);
    put_u32(frame, static_cast<uint32_t>(value.size()));
    put_bytes(frame, value);
    enqueue(c, frame);
  }

  void enqueue(Conn& c, std::span<const std::byte> bytes) {
    if (c.dead) return;
    if (c.out.size() - c.out_offset + bytes.size() > kMaxPendingOutputBytes) {
      return drop(c, fmt::format("rank {} does not read its responses", c.rank));
    }
    c.out.insert(c.out.end(), bytes.begin(), bytes.end());
  }

  void flush(Conn& c) {
    while (!c.dead && c.out_offset < c.out.size()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_offset, c.out.size() - c.out_offset,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_offset += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        c.dead = true;
      }
    }
    c.out.clear();
    c.out_offset = 0;
    if (c.closing) c.dead = true;
  }

  void expire_waiters() {
    const auto now = Clock::now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      auto& list = it->second;
      std::erase_if(list, [&](const Waiter& w) {
        if (w.deadline > now) return false;
        auto conn = conns_.find(w.conn_id);
        if (conn != conns_.end()) respond(conn->second, w.seq, kCodeTimeout, 0, {});
        return true;
      });
      it = list.empty() ? waiters_.erase(it) : std::next(it);
    }
  }

  // Closes dead connections and forgets their waiters.
  void sweep() {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (!it->second.dead) {
        ++it;
        continue;
      }
      const uint64_t id = it->first;
      it = conns_.erase(it);
      for (auto w = waiters_.begin(); w != waiters_.end();) {
        std::erase_if(w->second, [id](const Waiter& x) { return x.conn_id == id; });
        w = w->second.empty() ? waiters_.erase(w) : std::next(w);
      }
    }
  }

  // Fails every parked get() and makes one non-blocking attempt to deliver that; the sockets
  // then close, so clients that were not waiting see the server go away on their next call.
  void shut_down() {
    for (const auto& [key, list] : waiters_) {
      for (const Waiter& w : list) {
        auto conn = conns_.find(w.conn_id);
        if (conn != conns_.end()) respond(conn->second, w.seq, kCodeShutdown, 0, {});
      }
    }
    waiters_.clear();
    for (auto& [id, c] : conns_) flush(c);
    conns_.clear();
  }

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

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Options.

Status validate_bootstrap_options(const BootstrapOptions& o) {
  if (o.host.empty()) return Status(StatusCode::kInvalidArgument, "bootstrap: host is empty");
  if (o.port < 0 || o.port > 65535) {
    return error(StatusCode::kInvalidArgument, "bootstrap: port {} is outside 0..65535", o.port);
  }
  if (o.world_size < 1) {
    return error(StatusCode::kInvalidArgument, "bootstrap: world_size {} is below 1", o.world_size);
  }
  if (o.rank < 0 || o.rank >= o.world_size) {
    return error(StatusCode::kInvalidArgument, "bootstrap: rank {} is outside 0..{}", o.rank,
                 o.world_size - 1);
  }
  if (o.timeout.count() <= 0) {
    return error(StatusCode::kInvalidArgument, "bootstrap: timeout {} ms is not positive",
                 o.timeout.count());
  }
  return Status::ok();
}

Result<BootstrapOptions> bootstrap_options_from_env() {
  const auto missing = [](const char* name) {
    return error(StatusCode::kNotFound,
                 "{} is not set (the bootstrap needs MASTER_ADDR, MASTER_PORT, RANK and "
                 "WORLD_SIZE)",
                 name);
  };
  const auto addr = env::master_addr();
  const auto port = env::master_port();
  const auto rank = env::rank();
  const auto world_size = env::world_size();
  if (!addr) return missing("MASTER_ADDR");
  if (!port) return missing("MASTER_PORT");
  if (!rank) return missing("RANK");
  if (!world_size) return missing("WORLD_SIZE");
  BootstrapOptions o;
  if (addr->empty()) return Status(StatusCode::kInvalidArgument, "MASTER_ADDR='' is empty");
  o.host = *addr;
  MSI_ASSIGN_OR_RETURN(o.port, parse_int_var("MASTER_PORT", *port, 1, 65535));
  MSI_ASSIGN_OR_RETURN(o.world_size, parse_int_var("WORLD_SIZE", *world_size, 1, INT_MAX));
  MSI_ASSIGN_OR_RETURN(o.rank, parse_int_var("RANK", *rank, 0, INT_MAX));
  if (o.rank >= o.world_size) {
    return error(StatusCode::kInvalidArgument, "RANK='{}' is not below WORLD_SIZE='{}'", *rank,
                 *world_size);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// The client.

struct Rendezvous::Frame {
  uint32_t seq = 0;
  uint32_t code = 0;
  uint64_t arg = 0;
  std::vector<std::byte> value;
};

Rendezvous::Rendezvous(const BootstrapOptions& options, int port, int fd)
    : options_(options), port_(port), fd_(fd) {
  address_ = format_address(options.host, port);
}

Rendezvous::~Rendezvous() {
  if (fd_ >= 0) ::close(fd_);
  // NOTE: a fork()ed child has a copy of the server object, caught at any point of the parent's
  // server thread, but not the thread: it must neither join nor tear it down, so it leaks it
  // (the child is about to exit or exec, and every descriptor is close-on-exec).
  if (server_ && !server_->owned_by_this_process()) (void)server_.release();
  server_.reset();  // after our own socket, so the server never waits on us
}

Result<std::unique_ptr<Rendezvous>> Rendezvous::serve(const BootstrapOptions& options) {
  MSI_RETURN_IF_ERROR(validate_bootstrap_options(options));
  if (options.rank != 0) {
    return error(StatusCode::kInvalidArgument,
                 "bootstrap: rank {} cannot serve the rendezvous; rank 0 does", options.rank);
  }
  MSI_ASSIGN_OR_RETURN(auto server, detail::RendezvousServer::start(options));
  BootstrapOptions self = options;
  self.port = server->port();
  // Rank 0 reaches its own server over loopback when it listens on every interface.
  std::string connect_host = options.host;
  if (connect_host == "0.0.0.0") connect_host = "127.0.0.1";
  if (connect_host == "::") connect_host = "::1";
  MSI_ASSIGN_OR_RETURN(auto client, connect_to(self, connect_host));
  client->address_ = format_address(options.host, self.port);
  client->server_ = std::move(server);
  return client;
}

Result<std::unique_ptr<Rendezvous>> Rendezvous::connect(const BootstrapOptions& options) {
  MSI_RETURN_IF_ERROR(validate_bootstrap_options(options));
  if (options.port == 0) {
    return Status(StatusCode::kInvalidArgument,
                  "bootstrap: connect() needs the server's port (port 0 is for serve())");
  }
  return connect_to(options, options.host);
}

Result<std::unique_ptr<Rendezvous>> Rendezvous::connect_to(const BootstrapOptions& options,
                                                           const std::string& connect_host) {
  const auto deadline = Clock::now() + options.timeout;
  const std::string address = format_address(connect_host, options.port);
  const std::string who = fmt::format("rank {}", options.rank);
  std::string last_error = "nothing tried";
  auto backoff = milliseconds(10);
  while (true) {
    bool retryable = false;
    auto list = resolve(connect_host, options.port, /*passive=*/false, &retryable);
    if (!list.is_ok() && !retryable) return list.status().with_context(who);
    if (!list.is_ok()) last_error = list.status().message();
    for (addrinfo* ai = list.is_ok() ? list->get() : nullptr; ai != nullptr; ai = ai->ai_next) {
      UniqueFd fd = tcp_connect(*ai, deadline, &last_error);
      if (fd.get() < 0) continue;
      bool retry = false;
      auto rest = say_hello(fd.get(), options, deadline, &retry);
      if (rest.is_ok()) {
        auto r = std::unique_ptr<Rendezvous>(new Rendezvous(options, options.port, fd.release()));
        r->address_ = address;
        r->in_ = std::move(rest).value();
        return r;
      }
      if (!retry) {
        return error(rest.status().code(), "{}: rendezvous at {}: {}", who, address,
                     rest.status().message());
      }
      last_error = rest.status().message();
    }
    const int left = remaining_ms(deadline);
    if (left == 0) {
      return error(StatusCode::kDeadlineExceeded,
                   "{}: no rendezvous server at {} within {} ms (last error: {})", who, address,
                   options.timeout.count(), last_error);
    }
    std::this_thread::sleep_for(std::min(backoff, milliseconds(left)));
    backoff = std::min(backoff * 2, milliseconds(200));
  }
}

Status Rendezvous::broken_status(const std::string& what) const {
  return error(StatusCode::kUnavailable, "rank {}: lost the rendezvous server at {} ({}) while {}",
               options_.rank, address_, broken_, what);
}

Result<Rendezvous::Frame> Rendezvous::call(uint32_t op, const std::string& key, uint64_t arg,
                                           std::span<const std::byte> value,
                                           Clock::time_point deadline, const std::string& what) {
  if (!broken_.empty()) return broken_status(what);
  const auto timed_out = [&] {
    return error(StatusCode::kDeadlineExceeded,
                 "rank {}: timed out after {} ms {} (rendezvous server at {})", options_.rank,
                 options_.timeout.count(), what, address_);
  };
  const uint32_t seq = next_seq_++;
  std::vector<std::byte> frame;
  frame.reserve(kRequestHeaderBytes + key.size() + value.size());
  put_u32(frame, static_cast<uint32_t>(kRequestHeaderBytes - 4 + key.size() + value.size()));
  put_u32(frame, seq);
  put_u32(frame, op);
  put_u64(frame, arg);
  put_u32(frame, static_cast<uint32_t>(key.size()));
  put_u32(frame, static_cast<uint32_t>(value.size()));
  put_bytes(frame, as_bytes(key));
  put_bytes(frame, value);
  Status s = send_all(fd_, frame, deadline);
  if (!s.is_ok()) {
    // NOTE: a request sent in part leaves the stream unusable, whatever the cause.
    const bool late = s.code() == StatusCode::kDeadlineExceeded;
    broken_ = late ? "it stopped reading requests" : s.message();
    return late ? timed_out() : broken_status(what);
  }
  while (true) {
    if (in_.size() >= 4) {
      const size_t frame_bytes = load_u32(in_.data());
      if (frame_bytes < kResponseHeaderBytes - 4 || frame_bytes > kMaxResponseFrameBytes ||
          (in_.size() >= kResponseHeaderBytes &&
           load_u32(in_.data() + 20) != frame_bytes - (kResponseHeaderBytes - 4))) {
        broken_ = "it sent a malformed response";
        return broken_status(what);
      }
      if (in_.size() >= 4 + frame_bytes) {
        Frame f;
        f.seq = load_u32(in_.data() + 4);
        f.code = load_u32(in_.data() + 8);
        f.arg = load_u64(in_.data() + 12);
        f.value.assign(in_.begin() + kResponseHeaderBytes,
                       in_.begin() + static_cast<ptrdiff_t>(4 + frame_bytes));
        in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(4 + frame_bytes));
        // An earlier request that timed out on our side may still be answered: skip it.
        if (f.seq != seq) continue;
        if (f.code == kCodeTimeout) return timed_out();
        if (f.code == kCodeShutdown) {
          broken_ = "it shut down";
          return broken_status(what);
        }
        if (f.code != kCodeOk) {
          broken_ = fmt::format("it answered with unknown code {}", f.code);
          return broken_status(what);
        }
        return f;
      }
    }
    s = receive_some(fd_, in_, deadline);
    if (s.code() == StatusCode::kDeadlineExceeded) return timed_out();
    if (!s.is_ok()) {
      broken_ = s.message();
      return broken_status(what);
    }
  }
}

Status Rendezvous::set_until(const std::string& key, std::span<const std::byte> value,
                             Clock::time_point deadline) {
  if (value.size() > kMaxValueBytes) {
    return error(StatusCode::kInvalidArgument,
                 "rank {}: the value for key '{}' is {} bytes; the limit is {}", options_.rank, key,
                 value.size(), kMaxValueBytes);
  }
  return call(kOpSet, key, 0, value, deadline, fmt::format("setting key '{}'", key)).status();
}

Result<std::vector<std::byte>> Rendezvous::get_until(const std::string& key,
                                                     Clock::time_point deadline) {
  // The server parks the request for the time left and answers "timeout" when it runs out.
  const uint64_t wait_ms = static_cast<uint64_t>(std::max(remaining_ms(deadline), 1));
  MSI_ASSIGN_OR_RETURN(
      Frame f, call(kOpGet, key, wait_ms, {}, deadline, fmt::format("waiting for key '{}'", key)));
  return std::move(f.value);
}

Result<int64_t> Rendezvous::add_until(const std::string& key, int64_t delta,
                                      Clock::time_point deadline) {
  MSI_ASSIGN_OR_RETURN(Frame f, call(kOpAdd, key, static_cast<uint64_t>(delta), {}, deadline,
                                     fmt::format("adding to counter '{}'", key)));
  return static_cast<int64_t>(f.arg);
}

namespace {
Status check_key(int rank, const std::string& key) {
  if (key.empty()) return error(StatusCode::kInvalidArgument, "rank {}: the key is empty", rank);
  if (key.size() > kMaxKeyBytes) {
    return error(StatusCode::kInvalidArgument, "rank {}: key '{}...' is {} bytes; the limit is {}",
                 rank, key.substr(0, 64), key.size(), kMaxKeyBytes);
  }
  return Status::ok();
}
}  // namespace

Status Rendezvous::set(const std::string& key, std::span<const std::byte> value) {
  MSI_RETURN_IF_ERROR(check_key(options_.rank, key));
  std::lock_guard lock(mu_);
  return set_until(key, value, Clock::now() + options_.timeout);
}

Status Rendezvous::set(const std::string& key, std::string_view value) {
  return set(key, as_bytes(value));
}

Result<std::vector<std::byte>> Rendezvous::get(const std::string& key) {
  MSI_RETURN_IF_ERROR(check_key(options_.rank, key));
  std::lock_guard lock(mu_);
  return get_until(key, Clock::now() + options_.timeout);
}

Result<int64_t> Rendezvous::add(const std::string& key, int64_t delta) {
  MSI_RETURN_IF_ERROR(check_key(options_.rank, key));
  std::lock_guard lock(mu_);
  return add_until(key, delta, Clock::now() + options_.timeout);
}

Status Rendezvous::barrier(const std::string& name) {
  std::lock_guard lock(mu_);
  const auto deadline = Clock::now() + options_.timeout;
  // Each use of a name gets fresh keys: the n-th call of every rank meets at generation n.
  const int64_t generation = barrier_calls_[name];
  const std::string counter = fmt::format("__barrier/{}/{}", name, generation);
  const std::string done = counter + "/done";
  MSI_RETURN_IF_ERROR(check_key(options_.rank, done));
  barrier_calls_[name] = generation + 1;
  MSI_ASSIGN_OR_RETURN(int64_t arrived, add_until(counter, 1, deadline));
  if (arrived == options_.world_size) MSI_RETURN_IF_ERROR(set_until(done, {}, deadline));
  auto r = get_until(done, deadline);
  if (r.is_ok() || r.status().code() != StatusCode::kDeadlineExceeded) return r.status();
  // Say how far the others got; a short extra wait, since the server answers at once.
  auto now_arrived =
      add_until(counter, 0, Clock::now() + std::min(options_.timeout, milliseconds(1000)));
  return error(StatusCode::kDeadlineExceeded,
               "rank {}: barrier '{}' (use {}) timed out after {} ms with {} of {} ranks arrived "
               "(rendezvous server at {})",
               options_.rank, name, generation + 1, options_.timeout.count(),
               now_arrived.is_ok() ? fmt::format("{}", *now_arrived) : std::string("?"),
               options_.world_size, address_);
}

Result<std::vector<std::vector<std::byte>>> Rendezvous::all_gather(
    const std::string& key, std::span<const std::byte> mine) {
  const auto key_of = [&](int rank) { return fmt::format("{}/{}", key, rank); };
  MSI_RETURN_IF_ERROR(check_key(options_.rank, key_of(options_.world_size - 1)));
  std::lock_guard lock(mu_);
  const auto deadline = Clock::now() + options_.timeout;
  MSI_RETURN_IF_ERROR(set_until(key_of(options_.rank), mine, deadline));
  std::vector<std::vector<std::byte>> all(static_cast<size_t>(options_.world_size));
  for (int r = 0; r < options_.world_size; ++r) {
    MSI_ASSIGN_OR_RETURN(all[static_cast<size_t>(r)], get_until(key_of(r), deadline));
  }
  return all;
}

}  // namespace msi::comm

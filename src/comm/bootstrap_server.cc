// The rendezvous server behind Rendezvous::serve() (bootstrap.h): one thread, one poll() loop
// over non-blocking sockets, the key-value store, the counters and the parked get()s. The wire
// format and the helpers it shares with the client are in bootstrap_internal.h.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <iterator>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "comm/bootstrap_internal.h"
#include "core/logging.h"

namespace msi::comm::detail {
namespace {

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

}  // namespace

Result<std::unique_ptr<RendezvousServer>> RendezvousServer::start(const BootstrapOptions& options) {
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
    return error(last_errno == EADDRINUSE ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
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
  auto server = std::unique_ptr<RendezvousServer>(new RendezvousServer(
      options, format_address(options.host, port), port, std::move(listen_fd), std::move(wake_fd)));
  server->thread_ = std::make_unique<std::thread>([s = server.get()] { s->run(); });
  return server;
}

RendezvousServer::~RendezvousServer() {
  stop_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  thread_->join();
}

RendezvousServer::RendezvousServer(const BootstrapOptions& options, std::string address, int port,
                                   UniqueFd listen_fd, UniqueFd wake_fd)
    : world_size_(options.world_size),
      address_(std::move(address)),
      port_(port),
      owner_pid_(getpid()),
      listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)) {}

void RendezvousServer::run() {
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
bool RendezvousServer::accept_clients() {
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
void RendezvousServer::read_from(uint64_t id, Conn& c) {
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

void RendezvousServer::drop(Conn& c, const std::string& why) {
  MSI_LOG_WARN("rendezvous server {}: dropping the connection from {}: {}", address_, c.peer, why);
  c.dead = true;
}

// Consumes the hello and every complete request in c.in.
void RendezvousServer::handle_input(uint64_t id, Conn& c) {
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
      return drop(c, fmt::format("rank {} sent a request frame of {} bytes", c.rank, frame_bytes));
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

void RendezvousServer::handle_set(std::string key, std::span<const std::byte> value, Conn& c,
                                  uint32_t seq) {
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

void RendezvousServer::handle_get(uint64_t id, Conn& c, uint32_t seq, const std::string& key,
                                  uint64_t timeout_ms) {
  auto it = store_.find(key);
  if (it != store_.end()) return respond(c, seq, kCodeOk, 0, it->second);
  if (timeout_ms == 0) return respond(c, seq, kCodeTimeout, 0, {});
  const auto wait = milliseconds(std::min<uint64_t>(timeout_ms, uint64_t{1} << 40));
  waiters_[key].push_back({id, seq, Clock::now() + wait});
}

void RendezvousServer::respond(Conn& c, uint32_t seq, uint32_t code, uint64_t arg,
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

void RendezvousServer::enqueue(Conn& c, std::span<const std::byte> bytes) {
  if (c.dead) return;
  if (c.out.size() - c.out_offset + bytes.size() > kMaxPendingOutputBytes) {
    return drop(c, fmt::format("rank {} does not read its responses", c.rank));
  }
  c.out.insert(c.out.end(), bytes.begin(), bytes.end());
}

void RendezvousServer::flush(Conn& c) {
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

void RendezvousServer::expire_waiters() {
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
void RendezvousServer::sweep() {
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
void RendezvousServer::shut_down() {
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

}  // namespace msi::comm::detail

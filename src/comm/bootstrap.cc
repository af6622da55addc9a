// The Rendezvous client (bootstrap.h): connecting and the hello, one request and its response at
// a time over a blocking-with-deadline socket, and the options. Rank 0's server is in
// bootstrap_server.cc; the wire format both speak is in bootstrap_internal.h.
#include "comm/bootstrap.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <thread>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "comm/bootstrap_internal.h"
#include "core/env.h"

namespace msi::comm {
namespace {

// The wire format and socket helpers shared with the server.
using detail::as_bytes;
using detail::Clock;
using detail::errno_text;
using detail::format_address;
using detail::kCodeOk;
using detail::kCodeShutdown;
using detail::kCodeTimeout;
using detail::kHelloReplyBytes;
using detail::kMaxHelloMessageBytes;
using detail::kMaxResponseFrameBytes;
using detail::kOpAdd;
using detail::kOpGet;
using detail::kOpSet;
using detail::kRequestHeaderBytes;
using detail::kResponseHeaderBytes;
using detail::load_u32;
using detail::load_u64;
using detail::magic_prefix_matches;
using detail::put_bytes;
using detail::put_magic;
using detail::put_u32;
using detail::put_u64;
using detail::remaining_ms;
using detail::resolve;
using detail::set_socket_options;
using detail::UniqueFd;
using std::chrono::milliseconds;

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

Result<BootstrapOptions> supervisor_bootstrap_options(int world_size) {
  const auto addr = env::master_addr();
  const auto port = env::master_port();
  BootstrapOptions o;
  o.world_size = world_size;
  if (!addr && !port) return o;
  if (!addr || !port) {
    return error(StatusCode::kInvalidArgument, "{} is set but {} is not: set both, or neither for a local rendezvous",
                 addr ? "MASTER_ADDR" : "MASTER_PORT", addr ? "MASTER_PORT" : "MASTER_ADDR");
  }
  if (addr->empty()) return Status(StatusCode::kInvalidArgument, "MASTER_ADDR='' is empty");
  o.host = *addr;
  MSI_ASSIGN_OR_RETURN(o.port, parse_int_var("MASTER_PORT", *port, 1, 65535));
  return o;
}

std::string local_connect_host(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host;
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

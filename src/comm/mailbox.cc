#include "comm/mailbox.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace msi::comm::detail {
namespace {

// Polling before the first syscall, 10-50 µs depending on the CPU's pause latency (about 11 ns
// per pause on the development VM): a peer on another core usually answers sooner, and a futex
// sleep + wake costs several microseconds on each side.
constexpr int kSpinIterations = 1000;
// How long one futex sleep lasts before the deadline and the peer are checked again. Bounds how
// late a dead peer is noticed (a closing endpoint also wakes us at once).
constexpr std::chrono::milliseconds kWaitSlice{20};

size_t round_up(size_t n, size_t align) { return (n + align - 1) / align * align; }

bool checked_mul(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool checked_add(size_t a, size_t b, size_t* out) { return !__builtin_add_overflow(a, b, out); }

int futex_op(const Region& region, int op) {
  return region.process_shared() ? op : (op | FUTEX_PRIVATE_FLAG);
}

// Sleeps while *word == expected, at most `timeout`. Spurious returns are fine: callers re-check.
void futex_wait(const Region& region, uint32_t* word, uint32_t expected,
                std::chrono::nanoseconds timeout) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  syscall(SYS_futex, word, futex_op(region, FUTEX_WAIT), expected, &ts, nullptr, 0);
}

void futex_wake_all(const Region& region, uint32_t* word) {
  syscall(SYS_futex, word, futex_op(region, FUTEX_WAKE), INT_MAX, nullptr, nullptr, 0);
}

// True if process `pid` has exited. kill(pid, 0) alone is not enough: an exited child that its
// parent has not reaped yet (a zombie) still accepts signals, and the parent is typically the one
// waiting on it, so the process state in /proc is consulted too.
bool process_gone(int32_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": the comm may contain spaces and parentheses, so take the last ')'.
  const char* paren = std::strrchr(buf, ')');
  if (paren == nullptr || paren[1] != ' ') return false;
  const char state = paren[2];
  return state == 'Z' || state == 'X' || state == 'x';
}

std::string peer_name(const WaitContext& c) {
  const M2NOptions& o = *c.options;
  return fmt::format("{} {}", c.self_is_sender ? o.receiver_label : o.sender_label, c.peer_index);
}

// "(message 17 from attention worker 0)" / "(message 17 to expert worker 2, expecting step ...)"
std::string wait_details(const WaitContext& c) {
  const M2NOptions& o = *c.options;
  if (c.self_is_sender) {
    return fmt::format("(message {} from {} {})", c.message_index, o.sender_label, c.self_index);
  }
  std::string s =
      fmt::format("(message {} to {} {}", c.message_index, o.receiver_label, c.self_index);
  if (c.expected != nullptr) s += ", expecting " + unit_to_string(*c.expected);
  s += ")";
  return s;
}

}  // namespace

std::string unit_to_string(const UnitAddr& unit) {
  return fmt::format("step {}, layer {}, micro-batch {}", unit.step, unit.layer, unit.micro_batch);
}

std::string group_prefix(const M2NOptions& options) {
  return fmt::format("m2n '{}'", options.name);
}

Result<RegionLayout> region_layout(const M2NOptions& options) {
  const std::string prefix = group_prefix(options);
  if (options.n_senders < 1 || options.n_receivers < 1 || options.n_slots < 1) {
    return error(StatusCode::kInvalidArgument,
                 "{}: n_senders ({}), n_receivers ({}) and n_slots ({}) must be at least 1", prefix,
                 options.n_senders, options.n_receivers, options.n_slots);
  }
  if (options.timeout.count() < 0) {
    return error(StatusCode::kInvalidArgument, "{}: negative timeout ({} ms)", prefix,
                 options.timeout.count());
  }
  RegionLayout l;
  l.n_senders = options.n_senders;
  l.n_receivers = options.n_receivers;
  l.n_slots = options.n_slots;
  l.max_payload_bytes = options.max_payload_bytes;
  l.endpoints_offset = sizeof(ControlBlock);
  size_t endpoints_bytes = 0, n_mailboxes = 0, mailboxes_bytes = 0;
  bool ok = options.max_payload_bytes <= SIZE_MAX - 2 * kRegionAlign;
  ok = ok && checked_add(sizeof(MailboxHeader), round_up(options.max_payload_bytes, kRegionAlign),
                         &l.mailbox_stride);
  ok = ok && checked_mul(static_cast<size_t>(l.n_senders) + static_cast<size_t>(l.n_receivers),
                         sizeof(EndpointState), &endpoints_bytes);
  ok = ok && checked_mul(static_cast<size_t>(l.n_senders), static_cast<size_t>(l.n_receivers),
                         &n_mailboxes);
  ok = ok && checked_mul(n_mailboxes, static_cast<size_t>(l.n_slots), &n_mailboxes);
  ok = ok && checked_mul(n_mailboxes, l.mailbox_stride, &mailboxes_bytes);
  ok = ok && checked_add(l.endpoints_offset, endpoints_bytes, &l.mailboxes_offset);
  ok = ok && checked_add(l.mailboxes_offset, mailboxes_bytes, &l.total_bytes);
  ok = ok && l.total_bytes <= static_cast<size_t>(PTRDIFF_MAX);  // off_t, pointer differences
  if (!ok) {
    return error(StatusCode::kInvalidArgument,
                 "{}: region size overflows ({} senders, {} receivers, {} slots, {} bytes each)",
                 prefix, l.n_senders, l.n_receivers, l.n_slots, options.max_payload_bytes);
  }
  return l;
}

void Region::initialize(const M2NOptions& options) const {
  // Zero everything but the payloads, which need not be touched (a large shm region then costs
  // memory only as it is used).
  std::memset(base_, 0, layout_.mailboxes_offset);
  for (int s = 0; s < layout_.n_senders; ++s) {
    for (int r = 0; r < layout_.n_receivers; ++r) {
      for (int k = 0; k < layout_.n_slots; ++k) {
        std::memset(static_cast<void*>(&mailbox(s, r, static_cast<uint64_t>(k))), 0,
                    sizeof(MailboxHeader));
      }
    }
  }
  ControlBlock& c = control();
  c.version = kRegionVersion;
  c.n_senders = layout_.n_senders;
  c.n_receivers = layout_.n_receivers;
  c.n_slots = layout_.n_slots;
  c.max_payload_bytes = layout_.max_payload_bytes;
  c.region_bytes = layout_.total_bytes;
  c.timeout_ms = static_cast<int64_t>(options.timeout.count());
  std::atomic_ref<uint64_t>(c.magic).store(kRegionMagic, std::memory_order_release);
}

Status wait_for_state(const Region& region, MailboxHeader& mailbox, uint32_t want,
                      EndpointState& peer, const WaitContext& context) {
  std::atomic_ref<uint32_t> state(mailbox.state);
  for (int i = 0; i < kSpinIterations; ++i) {
    if (state.load(std::memory_order_acquire) == want) return Status::ok();
    _mm_pause();
  }

  // Slow path: sleep on the futex. Allocation is fine here only when building an error.
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + context.options->timeout;
  std::atomic_ref<uint32_t> n_waiters(mailbox.n_waiters);
  std::atomic_ref<uint32_t> peer_closed(peer.closed);
  std::atomic_ref<int32_t> peer_pid(peer.pid);
  const int32_t own_pid = static_cast<int32_t>(getpid());

  n_waiters.fetch_add(1, std::memory_order_seq_cst);
  Status status;
  bool slept = false;  // the process check costs syscalls: only once a sleep passed in vain
  while (true) {
    const uint32_t seen = state.load(std::memory_order_seq_cst);
    if (seen == want) break;
    // The peer going away only counts if the state still differs after we saw it go: a message
    // published before the close (release) is visible to this re-check.
    if (peer_closed.load(std::memory_order_acquire) != 0) {
      if (state.load(std::memory_order_acquire) == want) break;
      status = error(StatusCode::kUnavailable, "{}: {} closed its endpoint {}",
                     group_prefix(*context.options), peer_name(context), wait_details(context));
      break;
    }
    const int32_t pid = peer_pid.load(std::memory_order_acquire);
    if (slept && pid != 0 && pid != own_pid && process_gone(pid)) {
      if (state.load(std::memory_order_acquire) == want) break;
      status =
          error(StatusCode::kUnavailable, "{}: {} (pid {}) is gone {}",
                group_prefix(*context.options), peer_name(context), pid, wait_details(context));
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      if (state.load(std::memory_order_acquire) == want) break;
      status = error(StatusCode::kDeadlineExceeded, "{}: timed out after {} ms waiting for {}{} {}",
                     group_prefix(*context.options), context.options->timeout.count(),
                     peer_name(context), context.self_is_sender ? " to free a mailbox" : " to send",
                     wait_details(context));
      break;
    }
    const auto slice = std::min<Clock::duration>(kWaitSlice, deadline - now);
    futex_wait(region, &mailbox.state, seen,
               std::chrono::duration_cast<std::chrono::nanoseconds>(slice));
    slept = true;
  }
  n_waiters.fetch_sub(1, std::memory_order_seq_cst);
  return status;
}

void publish_state(const Region& region, MailboxHeader& mailbox, uint32_t state) {
  std::atomic_ref<uint32_t>(mailbox.state).store(state, std::memory_order_seq_cst);
  // NOTE: seq_cst store above, seq_cst load here, and the waiter's seq_cst fetch_add before its
  // seq_cst load of `state`: one of the two sides must see the other, so no wake is lost.
  if (std::atomic_ref<uint32_t>(mailbox.n_waiters).load(std::memory_order_seq_cst) != 0) {
    futex_wake_all(region, &mailbox.state);
  }
}

void wake_waiters(const Region& region, MailboxHeader& mailbox) {
  if (std::atomic_ref<uint32_t>(mailbox.n_waiters).load(std::memory_order_seq_cst) != 0) {
    futex_wake_all(region, &mailbox.state);
  }
}

}  // namespace msi::comm::detail

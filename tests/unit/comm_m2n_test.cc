// M2N groups on the inproc and shm transports: round trips with metadata, M×N threads with
// random sizes and out-of-order progress across pairs, ring back-pressure, capacity and protocol
// errors, timeouts and closed peers that name the peer, and shm across fork()ed processes
// (including children that die while the parent waits on them).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm/m2n.h"
#include "status_asserts.h"

namespace msi::comm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using msi::test::describe;

enum class Kind { kInproc, kShm };

std::string unique_shm_name() {
  static std::atomic<int> counter{0};
  return fmt::format("/msinfer-m2n-test-{}-{}", getpid(), counter.fetch_add(1));
}

M2NOptions make_options(int n_senders, int n_receivers, int n_slots, size_t max_payload_bytes,
                        milliseconds timeout = milliseconds(10000)) {
  M2NOptions o;
  o.name = "dispatch";
  o.sender_label = "attention worker";
  o.receiver_label = "expert worker";
  o.n_senders = n_senders;
  o.n_receivers = n_receivers;
  o.n_slots = n_slots;
  o.max_payload_bytes = max_payload_bytes;
  o.timeout = timeout;
  return o;
}

std::unique_ptr<M2NTransport> make_transport(Kind kind, const M2NOptions& options) {
  Result<std::unique_ptr<M2NTransport>> t = kind == Kind::kInproc
                                                ? make_inproc_transport(options)
                                                : create_shm_transport(unique_shm_name(), options);
  EXPECT_TRUE(t.is_ok()) << describe(t);
  return t.is_ok() ? std::move(t).value() : nullptr;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t fnv1a(std::span<const std::byte> bytes) {
  uint32_t h = 2166136261u;
  for (std::byte b : bytes) h = (h ^ static_cast<uint32_t>(b)) * 16777619u;
  return h;
}

// The message sender s sends receiver r for the unit with index u: its size, token count and
// bytes all follow from (s, r, u), so the receiver can check them without a side channel.
struct Expected {
  size_t size = 0;
  int64_t n_tokens = 0;
  std::vector<std::byte> bytes;
};
void expected_message(int s, int r, int64_t u, size_t max_bytes, Expected& out) {
  uint64_t seed = (static_cast<uint64_t>(s) << 48) ^ (static_cast<uint64_t>(r) << 32) ^
                  static_cast<uint64_t>(u);
  const uint64_t pick = splitmix64(seed);
  // Every few units the extremes: empty and exactly full.
  out.size = pick % 7 == 0 ? 0 : pick % 7 == 1 ? max_bytes : pick % (max_bytes + 1);
  out.n_tokens = static_cast<int64_t>(out.size / 4);
  out.bytes.resize(out.size);
  for (size_t i = 0; i < out.size; ++i) {
    out.bytes[i] = static_cast<std::byte>(splitmix64(seed) & 0xff);
  }
}

UnitAddr unit_of(int64_t u) {
  constexpr int kLayers = 3, kMicroBatches = 2;
  return UnitAddr{u / (kLayers * kMicroBatches), static_cast<int32_t>(u / kMicroBatches % kLayers),
                  static_cast<int32_t>(u % kMicroBatches)};
}

void PrintTo(Kind kind, std::ostream* os) { *os << (kind == Kind::kInproc ? "inproc" : "shm"); }

class M2NTest : public ::testing::TestWithParam<Kind> {};

std::string kind_name(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::kInproc ? "inproc" : "shm";
}

// ---------------------------------------------------------------------------------------------

TEST(M2NRegionTest, SizeIsAlignedAndFollowsTheLayout) {
  const M2NOptions o = make_options(3, 2, 4, 100);
  const size_t bytes = m2n_region_bytes(o);
  EXPECT_EQ(bytes % 64, 0u);
  // control + endpoint states + mailboxes of (64-byte header + payload padded to 128)
  EXPECT_EQ(bytes, 64u + 5u * 64u + 3u * 2u * 4u * (64u + 128u));
  EXPECT_EQ(m2n_region_bytes(make_options(1, 1, 1, 0)), 64u + 2u * 64u + 64u);
  EXPECT_EQ(m2n_region_bytes(make_options(0, 1, 1, 0)), 0u);
}

TEST(M2NRegionTest, InvalidOptionsAreRejected) {
  for (const M2NOptions& o :
       {make_options(0, 1, 1, 8), make_options(1, 0, 1, 8), make_options(1, 1, 0, 8),
        make_options(1, 1, 1, SIZE_MAX / 2), make_options(1, 1, 1, SIZE_MAX - 10),
        make_options(1, 1, 1, 8, milliseconds(-1))}) {
    auto t = make_inproc_transport(o);
    ASSERT_FALSE(t.is_ok());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << describe(t);
    auto s = create_shm_transport(unique_shm_name(), o);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << describe(s);
  }
}

TEST_P(M2NTest, EndpointsOpenOnceAndInRange) {
  auto t = make_transport(GetParam(), make_options(2, 3, 2, 64));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->options().n_receivers, 3);
  auto s1 = t->open_sender(1);
  ASSERT_OK(s1);
  EXPECT_EQ((*s1)->index(), 1);
  auto again = t->open_sender(1);
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("attention worker 1 is already opened"),
            std::string::npos)
      << describe(again);
  EXPECT_EQ(t->open_sender(2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->open_sender(-1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->open_receiver(3).status().code(), StatusCode::kInvalidArgument);
  auto r2 = t->open_receiver(2);
  ASSERT_OK(r2);
  EXPECT_EQ((*r2)->index(), 2);
  // Out-of-range peers are errors, not crashes.
  EXPECT_EQ((*s1)->acquire(3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*r2)->receive(2).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(M2NTest, RoundTripKeepsPayloadAndMetadata) {
  constexpr size_t kMax = 4096;
  auto t = make_transport(GetParam(), make_options(1, 1, 4, kMax));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  std::mt19937_64 rng(7);
  std::vector<size_t> sizes = {0, kMax, 1, 63, 64, 65, kMax - 1};
  for (int i = 0; i < 40; ++i) sizes.push_back(rng() % (kMax + 1));
  std::vector<std::byte> payload(kMax);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = sizes[i];
    for (size_t j = 0; j < n; ++j) payload[j] = static_cast<std::byte>(rng() & 0xff);
    MessageHeader h;
    h.unit = UnitAddr{static_cast<int64_t>(1000 + i), static_cast<int32_t>(i % 5),
                      static_cast<int32_t>(i % 2)};
    h.n_tokens = static_cast<int64_t>(n / 3);
    h.flags = 0xA5000000u | static_cast<uint32_t>(i);
    if (i % 2 == 0) {
      ASSERT_OK((*sender)->send(0, h, std::span<const std::byte>(payload.data(), n)));
    } else {  // the zero-copy path: write into the mailbox, then commit
      auto buffer = (*sender)->acquire(0);
      ASSERT_OK(buffer);
      ASSERT_EQ(buffer->size(), kMax);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer->data()) % 64, 0u);
      std::memcpy(buffer->data(), payload.data(), n);
      h.payload_bytes = n;
      ASSERT_OK((*sender)->commit(0, h));
    }
    auto m = (*receiver)->receive(0, &h.unit);
    ASSERT_OK(m);
    EXPECT_EQ(m->header.unit, h.unit);
    EXPECT_EQ(m->header.n_tokens, h.n_tokens);
    EXPECT_EQ(m->header.flags, h.flags);
    EXPECT_EQ(m->header.payload_bytes, n);
    ASSERT_EQ(m->payload.size(), n);
    EXPECT_TRUE(std::equal(m->payload.begin(), m->payload.end(), payload.begin()))
        << "message " << i << " of " << n << " bytes";
    (*receiver)->release(0);
  }
}

TEST_P(M2NTest, AcquireIsIdempotentUntilCommit) {
  auto t = make_transport(GetParam(), make_options(1, 1, 2, 64));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  ASSERT_OK(sender);
  auto a = (*sender)->acquire(0);
  auto b = (*sender)->acquire(0);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->data(), b->data());
  ASSERT_OK((*sender)->commit(0, MessageHeader{}));
  auto c = (*sender)->acquire(0);
  ASSERT_OK(c);
  EXPECT_NE(c->data(), a->data());  // the next mailbox of the ring
}

// Threads: M senders and N receivers move `n_units` units; every receiver gets exactly one
// message per sender per unit, with the right unit, token count, size and bytes. Senders
// interleave destinations at random (each pair stays in unit order, and a sender is never more
// than n_slots - 1 units ahead on one destination than on its slowest, which keeps the group
// deadlock-free); receivers take each unit's sources in a shuffled order.
void run_group(Kind kind, int n_senders, int n_receivers, int64_t n_units) {
  constexpr size_t kMax = 512;
  constexpr int kSlots = 4;
  auto t = make_transport(kind, make_options(n_senders, n_receivers, kSlots, kMax));
  ASSERT_NE(t, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int64_t> n_received{0};
  for (int s = 0; s < n_senders; ++s) {
    threads.emplace_back([&, s] {
      auto sender = t->open_sender(s);
      ASSERT_OK(sender);
      std::mt19937 rng(static_cast<uint32_t>(100 + s));
      std::vector<int64_t> next(static_cast<size_t>(n_receivers), 0);
      std::vector<int> ready;
      Expected e;
      while (true) {
        const int64_t low = *std::min_element(next.begin(), next.end());
        if (low == n_units) break;
        ready.clear();
        for (int r = 0; r < n_receivers; ++r) {
          const int64_t u = next[static_cast<size_t>(r)];
          if (u < n_units && u - low < kSlots) ready.push_back(r);
        }
        const int r = ready[rng() % ready.size()];
        const int64_t u = next[static_cast<size_t>(r)]++;
        expected_message(s, r, u, kMax, e);
        MessageHeader h;
        h.unit = unit_of(u);
        h.n_tokens = e.n_tokens;
        h.flags = fnv1a(e.bytes);
        const Status st = (*sender)->send(r, h, e.bytes);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
      }
      // The endpoint closes here, possibly before its last messages are received: those must
      // still be delivered.
    });
  }
  for (int r = 0; r < n_receivers; ++r) {
    threads.emplace_back([&, r] {
      auto receiver = t->open_receiver(r);
      ASSERT_OK(receiver);
      std::mt19937 rng(static_cast<uint32_t>(200 + r));
      std::vector<int> order(static_cast<size_t>(n_senders));
      for (int s = 0; s < n_senders; ++s) order[static_cast<size_t>(s)] = s;
      Expected e;
      for (int64_t u = 0; u < n_units; ++u) {
        std::shuffle(order.begin(), order.end(), rng);
        const UnitAddr unit = unit_of(u);
        for (int s : order) {
          auto m = (*receiver)->receive(s, &unit);
          ASSERT_TRUE(m.is_ok()) << describe(m);
          expected_message(s, r, u, kMax, e);
          ASSERT_EQ(m->header.n_tokens, e.n_tokens) << "unit " << u << " from " << s;
          ASSERT_EQ(m->payload.size(), e.size) << "unit " << u << " from " << s;
          ASSERT_EQ(m->header.flags, fnv1a(m->payload)) << "unit " << u << " from " << s;
          ASSERT_TRUE(std::equal(m->payload.begin(), m->payload.end(), e.bytes.begin()));
          (*receiver)->release(s);
          n_received.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(n_received.load(), n_units * n_senders * n_receivers);
}

TEST_P(M2NTest, ThreeByTwoThreads) { run_group(GetParam(), 3, 2, 2000); }
TEST_P(M2NTest, OneByFourThreads) { run_group(GetParam(), 1, 4, 1500); }
TEST_P(M2NTest, FourByOneThreads) { run_group(GetParam(), 4, 1, 1500); }

// Pairs are independent: a sender may run ahead on one destination, and a receiver may take its
// sources in any order; each pair stays FIFO.
TEST_P(M2NTest, PairsProgressIndependently) {
  auto t = make_transport(GetParam(), make_options(2, 2, 4, 16));
  ASSERT_NE(t, nullptr);
  auto s0 = t->open_sender(0), s1 = t->open_sender(1);
  auto r0 = t->open_receiver(0), r1 = t->open_receiver(1);
  ASSERT_OK(s0);
  ASSERT_OK(s1);
  ASSERT_OK(r0);
  ASSERT_OK(r1);
  auto send = [](M2NSender& s, int dst, int64_t step) {
    MessageHeader h;
    h.unit.step = step;
    h.n_tokens = s.index() * 100 + dst * 10 + step;
    return s.send(dst, h, {});
  };
  // Sender 0 fills its ring to receiver 1 before sending anything to receiver 0; sender 1 the
  // other way round, interleaved.
  for (int64_t k = 0; k < 4; ++k) ASSERT_OK(send(**s0, 1, k));
  ASSERT_OK(send(**s1, 0, 0));
  ASSERT_OK(send(**s1, 0, 1));
  ASSERT_OK(send(**s0, 0, 0));
  ASSERT_OK(send(**s1, 1, 0));
  // Receiver 1 drains sender 0 first, then sender 1; receiver 0 the other way round.
  for (int64_t k = 0; k < 4; ++k) {
    UnitAddr u{k, 0, 0};
    auto m = (*r1)->receive(0, &u);
    ASSERT_OK(m);
    EXPECT_EQ(m->header.n_tokens, 10 + k);
    (*r1)->release(0);
  }
  for (int64_t k = 0; k < 2; ++k) {
    auto m = (*r0)->receive(1);
    ASSERT_OK(m);
    EXPECT_EQ(m->header.unit.step, k);
    EXPECT_EQ(m->header.n_tokens, 100 + k);
    (*r0)->release(1);
  }
  auto m = (*r0)->receive(0);
  ASSERT_OK(m);
  EXPECT_EQ(m->header.n_tokens, 0);
  (*r0)->release(0);
  m = (*r1)->receive(1);
  ASSERT_OK(m);
  EXPECT_EQ(m->header.n_tokens, 110);
  (*r1)->release(1);
}

TEST_P(M2NTest, FullRingBlocksUntilReleased) {
  auto t = make_transport(GetParam(), make_options(1, 1, 2, 32));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  ASSERT_OK((*sender)->send(0, MessageHeader{UnitAddr{0, 0, 0}}, {}));
  ASSERT_OK((*sender)->send(0, MessageHeader{UnitAddr{1, 0, 0}}, {}));
  std::atomic<bool> acquired{false};
  Clock::duration blocked_for{};
  std::thread th([&] {
    const auto start = Clock::now();
    auto b = (*sender)->acquire(0);  // the third: both mailboxes are full
    blocked_for = Clock::now() - start;
    EXPECT_OK(b);
    acquired = true;
  });
  std::this_thread::sleep_for(milliseconds(150));
  EXPECT_FALSE(acquired.load());
  auto m = (*receiver)->receive(0);
  ASSERT_OK(m);
  EXPECT_EQ(m->header.unit.step, 0);
  (*receiver)->release(0);
  th.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_GE(blocked_for, milliseconds(100));
  EXPECT_LT(blocked_for, milliseconds(1000));
}

TEST_P(M2NTest, FullRingTimesOutNamingTheReceiver) {
  auto t = make_transport(GetParam(), make_options(1, 3, 2, 32, milliseconds(200)));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(2);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  ASSERT_OK((*sender)->send(2, MessageHeader{}, {}));
  ASSERT_OK((*sender)->send(2, MessageHeader{}, {}));
  const auto start = Clock::now();
  auto b = (*sender)->acquire(2);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(b.status().message(),
            "m2n 'dispatch': timed out after 200 ms waiting for expert worker 2 to free a mailbox "
            "(message 2 from attention worker 0)");
  EXPECT_GE(elapsed, milliseconds(200));
  EXPECT_LT(elapsed, milliseconds(1200));
}

TEST_P(M2NTest, CapacityAndCommitErrors) {
  auto t = make_transport(GetParam(), make_options(1, 1, 2, 64));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  MessageHeader h;
  h.payload_bytes = 8;
  Status st = (*sender)->commit(0, h);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("without acquire"), std::string::npos) << st.to_string();

  ASSERT_OK((*sender)->acquire(0));
  h.payload_bytes = 65;
  st = (*sender)->commit(0, h);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("65 bytes exceeds the mailbox capacity of 64"), std::string::npos)
      << st.to_string();
  std::vector<std::byte> big(100);
  st = (*sender)->send(0, MessageHeader{}, big);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();

  // The failed commits published nothing; the mailbox is still ours.
  h.payload_bytes = 64;
  h.n_tokens = 5;
  ASSERT_OK((*sender)->commit(0, h));
  auto m = (*receiver)->receive(0);
  ASSERT_OK(m);
  EXPECT_EQ(m->header.n_tokens, 5);
  EXPECT_EQ(m->payload.size(), 64u);
  // Receiving again before release is refused; release frees the mailbox.
  EXPECT_EQ((*receiver)->receive(0).status().code(), StatusCode::kInvalidArgument);
  (*receiver)->release(0);
}

TEST_P(M2NTest, SilentSenderTimesOutNamingItAndTheUnit) {
  auto t = make_transport(GetParam(), make_options(2, 1, 2, 32, milliseconds(200)));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(1);  // opened, but silent
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  const UnitAddr unit{5, 2, 1};
  for (int src : {1, 0}) {  // sender 0 never opened: waited for just the same
    const auto start = Clock::now();
    auto m = (*receiver)->receive(src, &unit);
    const auto elapsed = Clock::now() - start;
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(m.status().message(),
              fmt::format("m2n 'dispatch': timed out after 200 ms waiting for attention worker {} "
                          "to send (message 0 to expert worker 0, expecting step 5, layer 2, "
                          "micro-batch 1)",
                          src));
    EXPECT_GE(elapsed, milliseconds(200));
    EXPECT_LT(elapsed, milliseconds(1200));
  }
}

TEST_P(M2NTest, UnitMismatchIsInternalNamingBothUnits) {
  auto t = make_transport(GetParam(), make_options(1, 1, 2, 32));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  ASSERT_OK((*sender)->send(0, MessageHeader{UnitAddr{3, 1, 0}}, {}));
  const UnitAddr expected{3, 2, 0};
  auto m = (*receiver)->receive(0, &expected);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInternal);
  EXPECT_NE(m.status().message().find("expected step 3, layer 2, micro-batch 0"), std::string::npos)
      << describe(m);
  EXPECT_NE(m.status().message().find("got step 3, layer 1, micro-batch 0"), std::string::npos)
      << describe(m);
  // The message stays where it was.
  m = (*receiver)->receive(0);
  ASSERT_OK(m);
  EXPECT_EQ(m->header.unit, (UnitAddr{3, 1, 0}));
  (*receiver)->release(0);
}

TEST_P(M2NTest, ClosedSenderFailsWaitingReceiverFast) {
  auto t = make_transport(GetParam(), make_options(1, 1, 2, 32, milliseconds(10000)));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  ASSERT_OK((*sender)->send(0, MessageHeader{UnitAddr{1, 0, 0}}, {}));
  Status result;
  Clock::duration elapsed{};
  std::thread th([&] {
    // The message sent before the close is still delivered; the next wait fails.
    auto m = (*receiver)->receive(0);
    EXPECT_OK(m);
    (*receiver)->release(0);
    const auto start = Clock::now();
    result = (*receiver)->receive(0).status();
    elapsed = Clock::now() - start;
  });
  std::this_thread::sleep_for(milliseconds(100));
  sender.value().reset();
  th.join();
  EXPECT_EQ(result.code(), StatusCode::kUnavailable) << result.to_string();
  EXPECT_EQ(
      result.message(),
      "m2n 'dispatch': attention worker 0 closed its endpoint (message 1 to expert worker 0)");
  EXPECT_LT(elapsed, milliseconds(1000));
}

TEST_P(M2NTest, ClosedReceiverFailsWaitingSenderFast) {
  auto t = make_transport(GetParam(), make_options(1, 1, 1, 32, milliseconds(10000)));
  ASSERT_NE(t, nullptr);
  auto sender = t->open_sender(0);
  auto receiver = t->open_receiver(0);
  ASSERT_OK(sender);
  ASSERT_OK(receiver);
  ASSERT_OK((*sender)->send(0, MessageHeader{}, {}));
  Status result;
  Clock::duration elapsed{};
  std::thread th([&] {
    const auto start = Clock::now();
    result = (*sender)->acquire(0).status();
    elapsed = Clock::now() - start;
  });
  std::this_thread::sleep_for(milliseconds(100));
  receiver.value().reset();
  th.join();
  EXPECT_EQ(result.code(), StatusCode::kUnavailable) << result.to_string();
  EXPECT_NE(result.message().find("expert worker 0 closed its endpoint"), std::string::npos)
      << result.to_string();
  EXPECT_LT(elapsed, milliseconds(1000));
}

INSTANTIATE_TEST_SUITE_P(Transports, M2NTest, ::testing::Values(Kind::kInproc, Kind::kShm),
                         kind_name);

// --- shm only ---------------------------------------------------------------------------------

// Child side of a fork: exit codes say what went wrong (gtest cannot report from a child).
[[noreturn]] void child_exit(int code) { _exit(code); }

TEST(M2NShmTest, ForkedChildrenSendToParent) {
  constexpr int kSenders = 2;
  constexpr int64_t kUnits = 600;
  constexpr size_t kMax = 300;
  const std::string name = unique_shm_name();
  const M2NOptions o = make_options(kSenders, 1, 3, kMax, milliseconds(10000));
  auto creator = create_shm_transport(name, o);
  ASSERT_OK(creator);
  auto receiver = (*creator)->open_receiver(0);
  ASSERT_OK(receiver);
  std::vector<pid_t> children;
  for (int s = 0; s < kSenders; ++s) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto t = open_shm_transport(name, o);
      if (!t.is_ok()) child_exit(10);
      auto sender = (*t)->open_sender(s);
      if (!sender.is_ok()) child_exit(11);
      Expected e;
      for (int64_t u = 0; u < kUnits; ++u) {
        expected_message(s, 0, u, kMax, e);
        MessageHeader h;
        h.unit = unit_of(u);
        h.n_tokens = e.n_tokens;
        h.flags = fnv1a(e.bytes);
        if (!(*sender)->send(0, h, e.bytes).is_ok()) child_exit(12);
      }
      child_exit(0);  // no destructors: the parent still gets the last messages
    }
    children.push_back(pid);
  }
  Expected e;
  for (int64_t u = 0; u < kUnits; ++u) {
    const UnitAddr unit = unit_of(u);
    for (int s = kSenders - 1; s >= 0; --s) {
      auto m = (*receiver)->receive(s, &unit);
      ASSERT_OK(m);
      expected_message(s, 0, u, kMax, e);
      ASSERT_EQ(m->header.n_tokens, e.n_tokens);
      ASSERT_EQ(m->header.flags, fnv1a(m->payload));
      ASSERT_EQ(m->payload.size(), e.size);
      ASSERT_TRUE(std::equal(m->payload.begin(), m->payload.end(), e.bytes.begin()));
      (*receiver)->release(s);
    }
  }
  for (pid_t pid : children) {
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  }
  // Endpoints are opened once across processes too.
  auto again = (*creator)->open_sender(0);
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument) << describe(again);
}

// A child opens sender 0, tells the parent, then dies (by _exit or by SIGKILL from the parent
// while the parent waits on it). The parent's receive fails within about a second, not after
// the 10 s timeout, naming the child's pid.
void expect_dead_child_noticed(bool kill_it) {
  const std::string name = unique_shm_name();
  const M2NOptions o = make_options(1, 1, 2, 32, milliseconds(10000));
  auto creator = create_shm_transport(name, o);
  ASSERT_OK(creator);
  auto receiver = (*creator)->open_receiver(0);
  ASSERT_OK(receiver);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    auto t = open_shm_transport(name, o);
    if (!t.is_ok()) child_exit(10);
    auto sender = (*t)->open_sender(0);
    if (!sender.is_ok()) child_exit(11);
    const char ready = 1;
    if (write(pipe_fds[1], &ready, 1) != 1) child_exit(12);
    if (kill_it) {
      while (true) pause();
    }
    usleep(100000);
    child_exit(0);
  }
  close(pipe_fds[1]);
  char ready = 0;
  ASSERT_EQ(read(pipe_fds[0], &ready, 1), 1);
  close(pipe_fds[0]);
  std::thread killer;
  if (kill_it) {
    killer = std::thread([pid] {
      std::this_thread::sleep_for(milliseconds(100));
      kill(pid, SIGKILL);
    });
  }
  const auto start = Clock::now();
  auto m = (*receiver)->receive(0);
  const auto elapsed = Clock::now() - start;
  if (killer.joinable()) killer.join();
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable) << describe(m);
  EXPECT_NE(m.status().message().find(fmt::format("attention worker 0 (pid {}) is gone", pid)),
            std::string::npos)
      << describe(m);
  EXPECT_LT(elapsed, milliseconds(1000));
  if (kill_it) {
    EXPECT_TRUE(WIFSIGNALED(wstatus));
  } else {
    EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  }
}

TEST(M2NShmTest, ChildThatExitsIsNoticed) { expect_dead_child_noticed(/*kill_it=*/false); }
TEST(M2NShmTest, ChildThatIsKilledIsNoticed) { expect_dead_child_noticed(/*kill_it=*/true); }

TEST(M2NShmTest, OpenChecksOptionsAndExistence) {
  const std::string name = unique_shm_name();
  const M2NOptions o = make_options(3, 2, 4, 1024);
  auto missing = open_shm_transport(name, o);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << describe(missing);

  auto creator = create_shm_transport(name, o);
  ASSERT_OK(creator);
  auto twice = create_shm_transport(name, o);
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidArgument) << describe(twice);

  M2NOptions other = o;
  other.n_slots = 2;
  auto mismatch = open_shm_transport(name, other);
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("n_slots = 4, but the options say 2"),
            std::string::npos)
      << describe(mismatch);
  other = o;
  other.max_payload_bytes = 1000;
  mismatch = open_shm_transport(name, other);
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument) << describe(mismatch);
  EXPECT_NE(mismatch.status().message().find("max_payload_bytes"), std::string::npos);

  other = o;
  other.timeout = milliseconds(5);  // a per-process choice, not checked
  auto opened = open_shm_transport(name, other);
  ASSERT_OK(opened);
  EXPECT_EQ((*opened)->options().timeout, milliseconds(5));
  opened.value().reset();  // an opener does not unlink
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  EXPECT_GE(fd, 0);
  if (fd >= 0) close(fd);

  // Endpoints keep the mapping alive; the name goes with the creator.
  auto receiver = (*creator)->open_receiver(1);
  ASSERT_OK(receiver);
  creator.value().reset();
  EXPECT_EQ(shm_open(name.c_str(), O_RDWR, 0), -1);
  EXPECT_EQ(errno, ENOENT);
  auto gone = open_shm_transport(name, o);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound) << describe(gone);
  EXPECT_EQ((*receiver)->index(), 1);
}

TEST(M2NShmTest, BadNameIsInvalidArgument) {
  auto t = create_shm_transport("/has/slashes", make_options(1, 1, 1, 8));
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << describe(t);
}

}  // namespace
}  // namespace msi::comm

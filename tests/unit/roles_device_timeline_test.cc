// DeviceTimeline on the CPU backend, whose clock is the host clock (every op has finished when it
// returns): device spans land where the host saw the work, in order, on the host clock; overflow
// and unended spans are counted, not crashed on; flushes re-anchor and recording goes on.
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "roles/device_timeline.h"

namespace msi {
namespace {

// The CPU clock's mapping is off by the time between recording mark 0 and reading the host clock.
constexpr int64_t kToleranceNs = 200'000;

std::unique_ptr<Backend> cpu() {
  auto b = make_backend("cpu");
  EXPECT_TRUE(b.is_ok()) << b.status().message();
  return std::move(*b);
}

struct HostInterval {
  int64_t begin_ns, end_ns;
};

// Records one device span around `busy` of host time, returning the host interval around it.
HostInterval record(DeviceTimeline& dt, SpanKind kind, const comm::UnitAddr& unit, int64_t n_tokens,
                    std::chrono::microseconds busy) {
  const int64_t h0 = Timeline::now_ns();
  DeviceTimeline::Span s = dt.begin(kind, unit, n_tokens);
  std::this_thread::sleep_for(busy);
  dt.end(s);
  return {h0, Timeline::now_ns()};
}

TEST(DeviceTimeline, SpansLieWhereTheHostRanThemInOrder) {
  auto backend = cpu();
  DeviceTimeline dt(*backend, 16);
  Timeline tl("attention worker 0");
  std::vector<HostInterval> host;
  for (int l = 0; l < 3; ++l) {
    for (int mb = 0; mb < 2; ++mb) {
      host.push_back(
          record(dt, SpanKind::kAttention, {7, l, mb}, 10 + mb, std::chrono::microseconds(500)));
    }
  }
  EXPECT_EQ(dt.n_pending(), 6u);
  dt.flush_into(tl);
  EXPECT_EQ(dt.n_pending(), 0u);
  ASSERT_EQ(tl.spans().size(), 6u);
  for (size_t i = 0; i < tl.spans().size(); ++i) {
    const SpanRecord& s = tl.spans()[i];
    EXPECT_TRUE(s.device);
    EXPECT_EQ(s.kind, SpanKind::kAttention);
    EXPECT_EQ(s.unit,
              (comm::UnitAddr{7, static_cast<int32_t>(i / 2), static_cast<int32_t>(i % 2)}));
    EXPECT_EQ(s.n_tokens, static_cast<int64_t>(10 + i % 2));
    // Within the host interval around it, and as long as the work (0.5 ms of sleep).
    EXPECT_GE(s.begin_ns, host[i].begin_ns - kToleranceNs) << i;
    EXPECT_LE(s.end_ns, host[i].end_ns + kToleranceNs) << i;
    EXPECT_GE(s.end_ns - s.begin_ns, 450'000) << i;
    if (i > 0) {
      EXPECT_GE(s.begin_ns, tl.spans()[i - 1].end_ns) << i;
    }
  }
  EXPECT_EQ(tl.dropped(), 0u);
}

TEST(DeviceTimeline, OverflowIsCountedAndRecordingGoesOnAfterAFlush) {
  auto backend = cpu();
  DeviceTimeline dt(*backend, 4);
  Timeline tl("expert worker 1");
  EXPECT_FALSE(dt.half_full());
  for (int i = 0; i < 10; ++i)
    record(dt, SpanKind::kWaitExperts, {0, i, 0}, 1, std::chrono::microseconds(0));
  EXPECT_TRUE(dt.half_full());
  EXPECT_EQ(dt.n_pending(), 4u);
  EXPECT_EQ(dt.dropped(), 6u);
  dt.flush_into(tl);
  ASSERT_EQ(tl.spans().size(), 4u);
  EXPECT_EQ(tl.dropped(), 6u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(tl.spans()[static_cast<size_t>(i)].unit.layer, i);  // the first ones kept

  // A new anchor: the next spans resolve too, after the earlier ones.
  for (int i = 0; i < 2; ++i)
    record(dt, SpanKind::kWaitExperts, {1, i, 0}, 1, std::chrono::microseconds(100));
  dt.flush_into(tl);
  ASSERT_EQ(tl.spans().size(), 6u);
  EXPECT_EQ(tl.dropped(), 6u);
  EXPECT_GE(tl.spans()[4].begin_ns, tl.spans()[3].end_ns);
  EXPECT_EQ(tl.spans()[5].unit, (comm::UnitAddr{1, 1, 0}));
}

TEST(DeviceTimeline, UnendedSpansAndBadEndsAreDropped) {
  auto backend = cpu();
  DeviceTimeline dt(*backend, 8);
  Timeline tl("attention worker 0");
  DeviceTimeline::Span open = dt.begin(SpanKind::kWaitCombine, {0, 0, 0}, 4);
  (void)open;
  dt.end(DeviceTimeline::Span{});  // a dropped span's end does nothing
  DeviceTimeline::Span s = dt.begin(SpanKind::kLogits, {0, -1, -1}, 2);
  dt.end(s);
  dt.end(s);  // a second end does nothing
  dt.flush_into(tl);
  ASSERT_EQ(tl.spans().size(), 1u);
  EXPECT_EQ(tl.spans()[0].kind, SpanKind::kLogits);
  EXPECT_EQ(tl.dropped(), 1u);
  EXPECT_EQ(dt.dropped(), 1u);
}

TEST(DeviceTimeline, TimelineCapacityBoundsFlushedSpans) {
  auto backend = cpu();
  DeviceTimeline dt(*backend, 8);
  Timeline tl("attention worker 0", 3);
  for (int i = 0; i < 5; ++i)
    record(dt, SpanKind::kAttention, {0, i, 0}, 1, std::chrono::microseconds(0));
  dt.flush_into(tl);
  EXPECT_EQ(tl.spans().size(), 3u);
  EXPECT_EQ(tl.dropped(), 2u);
}

// Marks more than a second from their reference chain through a new one (float milliseconds on a
// GPU); on the host clock the result must be the same as without.
TEST(DeviceTimeline, LongGapsKeepTheHostClock) {
  auto backend = cpu();
  DeviceTimeline dt(*backend, 8);
  Timeline tl("attention worker 0");
  std::vector<HostInterval> host;
  host.push_back(record(dt, SpanKind::kAttention, {0, 0, 0}, 1, std::chrono::microseconds(200)));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  host.push_back(record(dt, SpanKind::kAttention, {0, 1, 0}, 1, std::chrono::microseconds(200)));
  host.push_back(record(dt, SpanKind::kAttention, {0, 2, 0}, 1, std::chrono::microseconds(200)));
  dt.flush_into(tl);
  ASSERT_EQ(tl.spans().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(tl.spans()[i].begin_ns, host[i].begin_ns - kToleranceNs) << i;
    EXPECT_LE(tl.spans()[i].end_ns, host[i].end_ns + kToleranceNs) << i;
  }
}

}  // namespace
}  // namespace msi

// Chrome trace events of a timeline: host spans on the worker's track, device spans on a second
// track named "<worker> (device)" right below it, only when there are device spans.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "pipeline/chrome_trace.h"

namespace msi {
namespace {

using nlohmann::json;

const json* metadata(const json& events, const std::string& name, int tid) {
  for (const json& e : events) {
    if (e["ph"] == "M" && e["name"] == name && e["tid"] == tid) return &e;
  }
  return nullptr;
}

TEST(ChromeTrace, DeviceSpansGoOnTheirOwnTrack) {
  Timeline tl("attention worker 1");
  Timeline::Span h = tl.begin(SpanKind::kAttention, {3, 2, 1}, 16);
  tl.end(h);
  SpanRecord d{SpanKind::kWaitCombine, {3, 2, 1}, 16, 5'000'000, 5'250'000};
  d.device = true;
  tl.record(d);

  const json events = timeline_trace_events(tl, 0, 1, 1'000'000);
  const int device_tid = device_track_tid(1);
  EXPECT_EQ(device_tid, 1001);
  const json* host_name = metadata(events, "thread_name", 1);
  const json* device_name = metadata(events, "thread_name", device_tid);
  ASSERT_NE(host_name, nullptr);
  ASSERT_NE(device_name, nullptr);
  EXPECT_EQ((*host_name)["args"]["name"], "attention worker 1");
  EXPECT_EQ((*device_name)["args"]["name"], "attention worker 1 (device)");
  // The device track sorts right below its host track.
  EXPECT_EQ((*metadata(events, "thread_sort_index", 1))["args"]["sort_index"], 2);
  EXPECT_EQ((*metadata(events, "thread_sort_index", device_tid))["args"]["sort_index"], 3);

  int n_host = 0, n_device = 0;
  for (const json& e : events) {
    if (e["ph"] != "X") continue;
    if (e["tid"] == 1) {
      ++n_host;
      EXPECT_EQ(e["name"], "attention L2 mb1");
      EXPECT_EQ(e["cat"], "compute");
    } else {
      ++n_device;
      EXPECT_EQ(e["tid"], device_tid);
      EXPECT_EQ(e["name"], "wait+combine L2 mb1");
      EXPECT_EQ(e["cat"], "device");
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 4000.0);  // µs from the origin
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 250.0);
      EXPECT_EQ(e["args"]["step"], 3);
      EXPECT_EQ(e["args"]["tokens"], 16);
    }
  }
  EXPECT_EQ(n_host, 1);
  EXPECT_EQ(n_device, 1);
}

TEST(ChromeTrace, NoDeviceTrackWithoutDeviceSpans) {
  Timeline tl("expert worker 0");
  tl.end(tl.begin(SpanKind::kExpertCompute, {0, 1, 0}, 4));
  const json events = timeline_trace_events(tl, 0, 2, 0);
  std::set<int> tids;
  for (const json& e : events) tids.insert(e["tid"].get<int>());
  EXPECT_EQ(tids, std::set<int>{2});
  EXPECT_EQ(metadata(events, "thread_name", 2)->at("args").count("dropped_spans"), 0u);
}

TEST(ChromeTrace, DroppedSpansAreNamedInTheTrackMetadata) {
  Timeline tl("attention worker 0", 1);
  tl.end(tl.begin(SpanKind::kAttention, {0, 0, 0}));
  tl.end(tl.begin(SpanKind::kAttention, {0, 1, 0}));  // past the capacity
  tl.add_dropped(2);
  EXPECT_EQ(tl.dropped(), 3u);
  const json events = timeline_trace_events(tl, 0, 0, 0);
  EXPECT_EQ((*metadata(events, "thread_name", 0))["args"]["dropped_spans"], 3);
}

TEST(ChromeTrace, SpanKindNames) {
  EXPECT_STREQ(span_kind_name(SpanKind::kGraphStep), "decode step (graph)");
  EXPECT_STREQ(span_kind_name(SpanKind::kAttentionExperts), "attention+experts");
  EXPECT_STREQ(span_kind_name(SpanKind::kWaitCombine), "wait+combine");
  EXPECT_STREQ(span_kind_name(SpanKind::kWaitExperts), "wait+experts");
  EXPECT_FALSE(span_kind_is_wait(SpanKind::kWaitCombine));  // device spans: their own category
}

}  // namespace
}  // namespace msi

// Chrome trace JSON (chrome://tracing, Perfetto): one track per worker, one complete ("X") event
// per span, named "<kind> L<layer> mb<micro-batch>" with the step and token count in args.
// A worker's device spans go on a second track, "<worker> (device)" (tid device_track_tid(tid),
// category "device"), listed right below its host track; it exists only when there are some.
// Timelines of several processes merge by concatenating their events (same host clock).
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pipeline/timeline.h"

namespace msi {

// Device tracks' tids: the host track's plus this (host tids are worker indices, far below it).
inline constexpr int kDeviceTrackTidOffset = 1000;
inline int device_track_tid(int tid) { return kDeviceTrackTidOffset + tid; }

// The trace events of one timeline on track (pid, tid), and of its device spans on track
// (pid, device_track_tid(tid)); times relative to `origin_ns`.
nlohmann::json timeline_trace_events(const Timeline& timeline, int pid, int tid, int64_t origin_ns);

// Writes {"traceEvents": [...], "displayTimeUnit": "ms"} from already-made events.
Status write_chrome_trace(const std::filesystem::path& path, const nlohmann::json& events);

// The earliest span start over timelines (the trace's time origin); 0 if there are none.
int64_t earliest_span_ns(const std::vector<const Timeline*>& timelines);

}  // namespace msi

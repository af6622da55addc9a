// Chrome trace JSON (chrome://tracing, Perfetto): one track per worker, one complete ("X") event
// per span, named "<kind> L<layer> mb<micro-batch>" with the step and token count in args.
// Timelines of several processes merge by concatenating their events (same host clock).
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pipeline/timeline.h"

namespace msi {

// The trace events of one timeline on track (pid, tid); times relative to `origin_ns`.
nlohmann::json timeline_trace_events(const Timeline& timeline, int pid, int tid, int64_t origin_ns);

// Writes {"traceEvents": [...], "displayTimeUnit": "ms"} from already-made events.
Status write_chrome_trace(const std::filesystem::path& path, const nlohmann::json& events);

// The earliest span start over timelines (the trace's time origin); 0 if there are none.
int64_t earliest_span_ns(const std::vector<const Timeline*>& timelines);

}  // namespace msi

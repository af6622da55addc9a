#include "pipeline/chrome_trace.h"

#include <fstream>

#include <fmt/format.h>

namespace msi {

namespace {

// Track metadata: its name, and its place (a worker's device track right below its host track).
void add_track(nlohmann::json& events, int pid, int tid, const std::string& name, int sort_index,
               size_t dropped) {
  nlohmann::json args = {{"name", name}};
  if (dropped > 0) args["dropped_spans"] = dropped;
  events.push_back(
      {{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", args}});
  events.push_back({{"name", "thread_sort_index"},
                    {"ph", "M"},
                    {"pid", pid},
                    {"tid", tid},
                    {"args", {{"sort_index", sort_index}}}});
}

}  // namespace

nlohmann::json timeline_trace_events(const Timeline& timeline, int pid, int tid,
                                     int64_t origin_ns) {
  nlohmann::json events = nlohmann::json::array();
  add_track(events, pid, tid, timeline.worker(), 2 * tid, timeline.dropped());
  bool device_track = false;
  for (const SpanRecord& s : timeline.spans()) {
    if (s.end_ns < s.begin_ns) continue;
    if (s.device && !device_track) {
      add_track(events, pid, device_track_tid(tid), timeline.worker() + " (device)", 2 * tid + 1,
                0);
      device_track = true;
    }
    events.push_back({
        {"name",
         fmt::format("{} L{} mb{}", span_kind_name(s.kind), s.unit.layer, s.unit.micro_batch)},
        {"cat", s.device                    ? "device"
                : span_kind_is_wait(s.kind) ? "wait"
                                            : "compute"},
        {"ph", "X"},
        {"pid", pid},
        {"tid", s.device ? device_track_tid(tid) : tid},
        {"ts", static_cast<double>(s.begin_ns - origin_ns) / 1e3},
        {"dur", static_cast<double>(s.end_ns - s.begin_ns) / 1e3},
        {"args",
         {{"step", s.unit.step},
          {"layer", s.unit.layer},
          {"micro_batch", s.unit.micro_batch},
          {"tokens", s.n_tokens}}},
    });
  }
  return events;
}

Status write_chrome_trace(const std::filesystem::path& path, const nlohmann::json& events) {
  std::ofstream f(path, std::ios::binary);
  if (!f) return error(StatusCode::kIoError, "cannot write the trace to {}", path.string());
  f << nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() << "\n";
  if (!f) return error(StatusCode::kIoError, "cannot write the trace to {}", path.string());
  return Status::ok();
}

int64_t earliest_span_ns(const std::vector<const Timeline*>& timelines) {
  int64_t origin = 0;
  for (const Timeline* t : timelines) {
    for (const SpanRecord& s : t->spans()) {
      if (origin == 0 || s.begin_ns < origin) origin = s.begin_ns;
    }
  }
  return origin;
}

}  // namespace msi

// Timeline: what one worker did when — compute and wait spans per unit (step, layer,
// micro-batch) — recorded into a buffer reserved up front (no allocation while recording; spans
// past the capacity are counted and dropped). Written as Chrome trace JSON by
// pipeline/chrome_trace.h, so overlap between workers is seen, not assumed.
//
// Clock: steady_clock (CLOCK_MONOTONIC), comparable across the processes of one host.
// Host spans say when the worker's thread did something (on a GPU: when it enqueued the work);
// device spans (SpanRecord::device, made by roles/device_timeline.h from marks on the backend's
// stream) say when the device ran it, converted to the same clock.
// One thread records into a Timeline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/m2n.h"

namespace msi {

enum class SpanKind : uint8_t {
  kAttention,      // attention-side compute of a unit (norms, attention, router, dispatch)
  kAttentionWait,  // attention side waiting for the experts' reply of a unit
  kCombine,        // adding the replies into the residual
  kExpertWait,     // expert side waiting for the dispatch messages of a unit
  kExpertCompute,  // expert GEMMs of a unit
  kStepPlan,       // host planning of a step (batch layout, KV slots)
  kLogits,         // final norm, LM head and sampling
  kGraphStep,      // a whole decode step replayed as one device graph (no per-unit spans)
  // Device spans only. A device span starts when the device has finished the work enqueued
  // before it, so the kWait* ones include the device-side wait (its stream waiting on another
  // device's event, or idle while the host waits for a message) before the unit's compute.
  kAttentionExperts,  // attention-side compute with the routed experts inline (colocated experts)
  kWaitCombine,       // waiting for the experts' partial sums, then adding them (attention side)
  kWaitExperts,       // waiting for the tokens of every source, then the expert GEMMs (expert side)
};
const char* span_kind_name(SpanKind kind);
bool span_kind_is_wait(SpanKind kind);

struct SpanRecord {
  SpanKind kind;
  comm::UnitAddr unit;
  int64_t n_tokens = 0;
  int64_t begin_ns = 0;  // steady_clock
  int64_t end_ns = 0;
  bool device = false;  // when the device ran it (its own track in the trace), not the host
};

class Timeline {
 public:
  // `worker` names the track ("attention worker 0"); `capacity` spans are reserved.
  Timeline(std::string worker, size_t capacity = 1 << 20);

  struct Span {
    size_t index = static_cast<size_t>(-1);
  };
  Span begin(SpanKind kind, const comm::UnitAddr& unit, int64_t n_tokens = 0);
  void end(Span span);
  // Appends a finished span (device spans, resolved after the fact); counted as dropped past the
  // capacity. Never allocates.
  void record(const SpanRecord& span);
  // Spans lost elsewhere (a device timeline's overflow) count here too.
  void add_dropped(size_t n) { dropped_ += n; }

  const std::string& worker() const { return worker_; }
  const std::vector<SpanRecord>& spans() const { return spans_; }
  size_t dropped() const { return dropped_; }
  static int64_t now_ns();

 private:
  std::string worker_;
  std::vector<SpanRecord> spans_;
  size_t capacity_;
  size_t dropped_ = 0;
};

}  // namespace msi

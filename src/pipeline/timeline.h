// Timeline: what one worker did when — compute and wait spans per unit (step, layer,
// micro-batch) — recorded into a buffer reserved up front (no allocation while recording; spans
// past the capacity are counted and dropped). Written as Chrome trace JSON by
// pipeline/chrome_trace.h, so overlap between workers is seen, not assumed.
//
// Clock: steady_clock (CLOCK_MONOTONIC), comparable across the processes of one host.
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
};
const char* span_kind_name(SpanKind kind);
bool span_kind_is_wait(SpanKind kind);

struct SpanRecord {
  SpanKind kind;
  comm::UnitAddr unit;
  int64_t n_tokens = 0;
  int64_t begin_ns = 0;  // steady_clock
  int64_t end_ns = 0;
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

#include "roles/device_timeline.h"

#include <cmath>

#include "core/check.h"
#include "core/logging.h"

namespace msi {

namespace {

// cudaEventElapsedTime is a float of milliseconds: about 60 ns resolution at 1 s from the
// reference mark, 60 µs at 1000 s. Marks further than this from the reference become the next
// reference (their host times chain), which keeps every mark within float's fine range.
constexpr double kRekeyMs = 1000.0;

size_t checked_capacity(size_t capacity) {
  MSI_CHECK(capacity > 0 && capacity < (size_t{1} << 29), "device timeline capacity {}", capacity);
  return capacity;
}

}  // namespace

DeviceTimeline::DeviceTimeline(Backend& backend, size_t capacity)
    : backend_(backend),
      capacity_(checked_capacity(capacity)),
      clock_(backend.make_clock(static_cast<int>(1 + 2 * capacity))),
      mark_ns_(1 + 2 * capacity, 0) {
  pending_.reserve(capacity);
  anchor();
}

void DeviceTimeline::anchor() {
  // The stream is idle, so the device reaches mark 0 as soon as it is enqueued: its time is the
  // host clock right after the enqueue (the host-to-device latency is the mapping's offset).
  backend_.synchronize();
  clock_->record(0);
  anchor_ns_ = Timeline::now_ns();
  next_mark_ = 1;
}

DeviceTimeline::Span DeviceTimeline::begin(SpanKind kind, const comm::UnitAddr& unit,
                                           int64_t n_tokens) {
  if (pending_.size() >= capacity_) {
    ++dropped_;
    ++dropped_unflushed_;
    return Span{};
  }
  // NOTE: a span's marks are taken when recorded, so mark order is stream order (flush chains
  // references through them) and capacity spans never need more than 2 * capacity marks.
  const int mark = next_mark_++;
  clock_->record(mark);
  pending_.push_back(Pending{kind, unit, n_tokens, mark, -1});
  return Span{pending_.size() - 1};
}

void DeviceTimeline::end(Span span) {
  if (span.index >= pending_.size() || pending_[span.index].end_mark >= 0) return;
  const int mark = next_mark_++;
  clock_->record(mark);
  pending_[span.index].end_mark = mark;
}

void DeviceTimeline::flush_into(Timeline& timeline) {
  // Host times of marks 1 .. next_mark_-1, each measured from the latest reference mark.
  int ref = 0;
  int64_t ref_ns = anchor_ns_;
  for (int i = 1; i < next_mark_; ++i) {
    const double ms = clock_->elapsed_ms(ref, i);
    const int64_t t = ref_ns + std::llround(ms * 1e6);
    mark_ns_[static_cast<size_t>(i)] = t;
    if (ms > kRekeyMs) {
      ref = i;
      ref_ns = t;
    }
  }
  size_t lost = dropped_unflushed_;
  for (const Pending& p : pending_) {
    if (p.end_mark < 0) {
      ++lost;
      ++dropped_;
      continue;
    }
    SpanRecord r{p.kind, p.unit, p.n_tokens, mark_ns_[static_cast<size_t>(p.begin_mark)],
                 mark_ns_[static_cast<size_t>(p.end_mark)]};
    r.device = true;
    timeline.record(r);
  }
  if (lost > 0) {
    MSI_LOG_WARN(
        "{}: {} device spans were dropped (past the capacity of {} between flushes, or not ended)",
        timeline.worker(), lost, capacity_);
  }
  timeline.add_dropped(lost);
  pending_.clear();  // keeps its capacity
  dropped_unflushed_ = 0;
  anchor();
}

}  // namespace msi

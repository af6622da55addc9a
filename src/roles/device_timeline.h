// DeviceTimeline: when one worker's device ran its units, as opposed to when its thread enqueued
// them (pipeline/timeline.h). begin()/end() record marks on the backend's stream (a CUDA event on
// a GPU, the host clock on the CPU, where every op has finished when it returns); flush_into()
// turns them into device spans (SpanRecord::device) of a Timeline on the host's steady_clock, so
// that the trace shows the real overlap of the ping-pong pipeline on the devices.
//
// Owns a DeviceClock of 1 + 2 * capacity marks and the span buffer, both made at construction; a
// span takes two marks. Recording never allocates and never waits for the device; spans past the
// capacity are counted as dropped. One thread records into a DeviceTimeline (the one that drives
// the backend).
//
// Clock mapping: an anchor — the stream synchronized, then mark 0 recorded on the idle stream and
// the host clock read — ties device time to host time, and mark i maps to
// anchor_ns + elapsed_ms(anchor, i) · 1e6. Every flush makes a new anchor, so the mapping's drift
// is bounded by the time between flushes; its offset is the delay between the mark's enqueue and
// the device reaching it (microseconds on a GPU).
// NOTE: a span starts when the device reaches its begin mark: when it has finished everything
// enqueued before. Where the unit's work starts with a device-side wait (the stream waiting on
// another device's event) or the device idles while the host waits for a message, the span
// includes that wait (SpanKind::kWaitCombine, kWaitExperts say so).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "comm/m2n.h"
#include "pipeline/timeline.h"

namespace msi {

class DeviceTimeline {
 public:
  // Spans between two flushes. A step of the largest models records a few hundred per worker;
  // the runners flush at step boundaries once half of this is used.
  static constexpr size_t kDefaultCapacity = 8192;

  // Makes the clock (1 + 2 * capacity marks) and the first anchor: blocks until the backend's
  // stream is idle. Requires capacity > 0.
  explicit DeviceTimeline(Backend& backend, size_t capacity = kDefaultCapacity);

  struct Span {
    size_t index = static_cast<size_t>(-1);
  };
  // Enqueues the span's begin mark on the stream; a dropped span (past the capacity) is an
  // invalid Span, which end() ignores. Never blocks or allocates.
  Span begin(SpanKind kind, const comm::UnitAddr& unit, int64_t n_tokens = 0);
  // Enqueues the span's end mark. Never blocks or allocates.
  void end(Span span);

  size_t capacity() const { return capacity_; }
  size_t n_pending() const { return pending_.size(); }  // recorded since the last flush
  size_t dropped() const { return dropped_; }           // since construction
  // True once half of the capacity is used: time to flush at the next point where the device is
  // known to be done (a step that read its results back to the host), so that it does not wait.
  bool half_full() const { return 2 * pending_.size() >= capacity_; }

  // Appends every span recorded since the last flush to `timeline` as device spans (a span begun
  // but not ended is dropped), adds the spans dropped since the last flush to its dropped count,
  // and makes a new anchor. Blocks until the device has reached every mark and its stream is idle.
  void flush_into(Timeline& timeline);

 private:
  struct Pending {
    SpanKind kind;
    comm::UnitAddr unit;
    int64_t n_tokens = 0;
    int begin_mark = 0;
    int end_mark = -1;  // -1: not ended
  };
  void anchor();

  Backend& backend_;
  size_t capacity_;
  std::unique_ptr<DeviceClock> clock_;
  int64_t anchor_ns_ = 0;         // host time of mark 0
  int next_mark_ = 1;             // marks are taken in stream order: 1, 2, ...
  std::vector<Pending> pending_;  // capacity reserved
  std::vector<int64_t> mark_ns_;  // [1 + 2 * capacity] host times of the marks, filled by flush
  size_t dropped_ = 0;
  size_t dropped_unflushed_ = 0;
};

}  // namespace msi

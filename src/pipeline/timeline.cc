#include "pipeline/timeline.h"

namespace msi {

const char* span_kind_name(SpanKind kind) {
  switch (kind) {
    case SpanKind::kAttention: return "attention";
    case SpanKind::kAttentionWait: return "wait experts";
    case SpanKind::kCombine: return "combine";
    case SpanKind::kExpertWait: return "wait dispatch";
    case SpanKind::kExpertCompute: return "experts";
    case SpanKind::kStepPlan: return "plan step";
    case SpanKind::kLogits: return "logits+sample";
    case SpanKind::kGraphStep: return "decode step (graph)";
    case SpanKind::kAttentionExperts: return "attention+experts";
    case SpanKind::kWaitCombine: return "wait+combine";
    case SpanKind::kWaitExperts: return "wait+experts";
  }
  return "?";
}

bool span_kind_is_wait(SpanKind kind) {
  return kind == SpanKind::kAttentionWait || kind == SpanKind::kExpertWait;
}

Timeline::Timeline(std::string worker, size_t capacity)
    : worker_(std::move(worker)), capacity_(capacity) {
  spans_.reserve(capacity);
}

int64_t Timeline::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Timeline::Span Timeline::begin(SpanKind kind, const comm::UnitAddr& unit, int64_t n_tokens) {
  if (spans_.size() >= capacity_) {
    ++dropped_;
    return Span{};
  }
  const int64_t t = now_ns();
  spans_.push_back(SpanRecord{kind, unit, n_tokens, t, t});
  return Span{spans_.size() - 1};
}

void Timeline::end(Span span) {
  if (span.index < spans_.size()) spans_[span.index].end_ns = now_ns();
}

void Timeline::record(const SpanRecord& span) {
  if (spans_.size() >= capacity_) {
    ++dropped_;
    return;
  }
  spans_.push_back(span);
}

}  // namespace msi

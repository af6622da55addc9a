#include "engine/attention_runner.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "roles/colocated_expert_link.h"
#include "roles/moe_message.h"

namespace msi {

AttentionRunner::AttentionRunner(const ModelConfig& config, AttentionWorker& worker, ExpertLink& link,
                                 const RunnerOptions& options, Timeline* timeline)
    : config_(config), worker_(worker), link_(link), options_(options), timeline_(timeline),
      logits_(static_cast<size_t>(options.max_seqs * config.vocab_size)), ids_(static_cast<size_t>(options.max_seqs)) {
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.is_moe_layer(l)) {
      first_moe_layer_ = l;
      break;
    }
  }
  MSI_CHECK(first_moe_layer_ >= 0, "a model without MoE layers has no expert workers to talk to");
  if (timeline_ != nullptr) {
    device_ = std::make_unique<DeviceTimeline>(worker_.backend());
    if (dynamic_cast<const ColocatedExpertLink*>(&link_) != nullptr) {
      // send() enqueues the routed experts on this stream and receive() only the combine.
      device_attention_kind_ = SpanKind::kAttentionExperts;
      device_combine_kind_ = SpanKind::kCombine;
    }
  }
}

DeviceTimeline::Span AttentionRunner::device_begin(SpanKind kind, const UnitId& unit, int64_t n_tokens) {
  return device_ && n_tokens > 0 ? device_->begin(kind, unit, n_tokens) : DeviceTimeline::Span{};
}

void AttentionRunner::device_end(DeviceTimeline::Span span) {
  if (device_) device_->end(span);
}

Status AttentionRunner::run_step(std::span<const SeqChunk> chunks, int64_t step, uint32_t probe_flags,
                                 uint32_t* reply, bool device_sampling) {
  *reply = 0;
  const bool idle = chunks.empty();
  if (!idle) after_idle_step_ = false;
  if (options_.use_graphs && worker_.graph_eligible(chunks, options_.n_micro_batches, link_)) {
    // A whole decode step in one device launch (no per-op launches on the host), and one span: no
    // marks can be recorded inside a replayed graph.
    const auto n_seqs = static_cast<int64_t>(chunks.size());
    Timeline::Span span = timeline_ ? timeline_->begin(SpanKind::kGraphStep, {step, -1, -1}, n_seqs) : Timeline::Span{};
    DeviceTimeline::Span device = device_begin(SpanKind::kGraphStep, {step, -1, -1}, n_seqs);
    Status st = worker_.run_decode_graph(chunks, step, link_, device_sampling ? nullptr : logits_.data(),
                                         device_sampling ? ids_.data() : nullptr, params_.data());
    device_end(device);
    if (timeline_) timeline_->end(span);
    return st;
  }
  Timeline::Span plan = timeline_ ? timeline_->begin(SpanKind::kStepPlan, {step, -1, -1}) : Timeline::Span{};
  MSI_RETURN_IF_ERROR(worker_.begin_step(chunks, options_.n_micro_batches, step));
  if (timeline_) timeline_->end(plan);
  const int n_mb = worker_.n_micro_batches();
  const int n_layers = static_cast<int>(config_.n_layers);

  auto combine = [&](int layer, int mb) -> Status {
    if (!config_.is_moe_layer(layer)) return Status::ok();
    Timeline::Span wait = timeline_ ? timeline_->begin(SpanKind::kAttentionWait, {step, layer, mb}) : Timeline::Span{};
    DeviceTimeline::Span device = device_begin(device_combine_kind_, {step, layer, mb}, worker_.micro_batch_tokens(mb));
    Result<uint32_t> flags = worker_.layer_combine(layer, mb, link_);
    device_end(device);
    if (timeline_) timeline_->end(wait);
    return flags.status();
  };
  for (int l = 0; l < n_layers; ++l) {
    for (int mb = 0; mb < n_mb; ++mb) {
      // The idle probe's reply was already read right after it was sent.
      const bool probe_done = idle && l - 1 == first_moe_layer_ && mb == 0;
      if (l > 0 && !probe_done) MSI_RETURN_IF_ERROR(combine(l - 1, mb));
      const bool probe = idle && l == first_moe_layer_ && mb == 0;
      const int64_t n_tokens = worker_.micro_batch_tokens(mb);
      Timeline::Span span = timeline_ ? timeline_->begin(SpanKind::kAttention, {step, l, mb}, n_tokens) : Timeline::Span{};
      const SpanKind kind = config_.is_moe_layer(l) ? device_attention_kind_ : SpanKind::kAttention;
      DeviceTimeline::Span device = device_begin(kind, {step, l, mb}, n_tokens);
      MSI_RETURN_IF_ERROR(worker_.layer_attention(l, mb, link_, probe ? probe_flags : 0u));
      device_end(device);
      if (timeline_) timeline_->end(span);
      if (probe) {
        // An idle worker learns at once whether everyone is idle (the step ends here) or done.
        // After an all-idle step the reply comes only once some worker has work: no deadline.
        Timeline::Span wait = timeline_ ? timeline_->begin(SpanKind::kAttentionWait, {step, l, mb}) : Timeline::Span{};
        link_.set_patient(after_idle_step_);
        Result<uint32_t> flags = worker_.layer_combine(l, mb, link_);
        link_.set_patient(false);
        if (timeline_) timeline_->end(wait);
        if (!flags.is_ok()) return flags.status();
        *reply = *flags;
        after_idle_step_ = (*flags & kFlagAllIdle) != 0;
        if (*flags & (kFlagStop | kFlagAllIdle)) return Status::ok();
      }
    }
  }
  for (int mb = 0; mb < n_mb; ++mb) {
    const bool probe_done = idle && n_layers - 1 == first_moe_layer_ && mb == 0;
    if (!probe_done) MSI_RETURN_IF_ERROR(combine(n_layers - 1, mb));
  }
  Timeline::Span logits = timeline_ ? timeline_->begin(SpanKind::kLogits, {step, -1, -1}) : Timeline::Span{};
  DeviceTimeline::Span device = device_begin(SpanKind::kLogits, {step, -1, -1}, static_cast<int64_t>(chunks.size()));
  Status st = device_sampling ? worker_.finish_step_sample(params_.data(), ids_.data())
                              : worker_.finish_step(logits_.data());
  device_end(device);
  if (timeline_) timeline_->end(logits);
  return st;
}

namespace {

// The report of a request that ended without a token (aborted, or refused by the scheduler).
SeqOutput aborted(int64_t id) {
  SeqOutput o;
  o.id = id;
  o.finished = true;
  o.finish_reason = "abort";
  return o;
}

}  // namespace

Status AttentionRunner::serve(WorkerInbox& inbox, WorkerOutbox& outbox) {
  SchedulerConfig sc;
  sc.max_batched_tokens = options_.max_batched_tokens;
  sc.max_seqs = options_.max_seqs;
  sc.max_model_len = options_.max_model_len;
  sc.vocab_size = config_.vocab_size;
  sc.eos_token_ids = config_.eos_token_ids;
  Scheduler scheduler(sc, worker_);
  std::vector<WorkerEvent> events;
  std::vector<SeqChunk> chunks;
  chunks.reserve(static_cast<size_t>(options_.max_seqs));
  WorkerReport report;
  bool shutting_down = false;
  bool idle_wait = false;  // every worker was idle: sleep until an event
  auto stats = [&] {
    return WorkerStats{scheduler.n_running(), scheduler.n_waiting(), worker_.block_pool().n_used(),
                       worker_.block_pool().n_blocks(), scheduler.n_preemptions()};
  };
  // Expert-load counts ride on a report at most once a second, and when this worker falls idle or
  // stops (so an idle deployment's totals are exact): each take is one small device-to-host copy.
  int64_t n_counted_steps = 0;  // steps with tokens since the counts were last taken
  auto counts_taken = std::chrono::steady_clock::now();
  auto attach_counts = [&](bool now) -> Status {
    report.expert_tokens.clear();
    report.expert_steps = 0;
    if (n_counted_steps == 0 || (!now && std::chrono::steady_clock::now() - counts_taken < std::chrono::seconds(1))) {
      return Status::ok();
    }
    MSI_RETURN_IF_ERROR(worker_.take_expert_counts(report.expert_tokens));
    report.expert_steps = std::exchange(n_counted_steps, 0);
    counts_taken = std::chrono::steady_clock::now();
    return Status::ok();
  };

  for (int64_t step = 0;; ++step) {
    events.clear();
    MSI_RETURN_IF_ERROR(inbox.poll(events));
    while (idle_wait && events.empty()) {
      MSI_RETURN_IF_ERROR(inbox.wait(std::chrono::milliseconds(100)));
      MSI_RETURN_IF_ERROR(inbox.poll(events));
    }
    idle_wait = false;
    report.outputs.clear();
    for (WorkerEvent& e : events) {
      switch (e.kind) {
        case WorkerEvent::Kind::kAdd: {
          const int64_t id = e.request.id;
          Status st = scheduler.add(std::move(e.request));
          if (!st.is_ok()) report.outputs.push_back(aborted(id));
          break;
        }
        case WorkerEvent::Kind::kAbort:
          if (scheduler.abort(e.id)) report.outputs.push_back(aborted(e.id));
          break;
        case WorkerEvent::Kind::kShutdown: shutting_down = true; break;
        case WorkerEvent::Kind::kWake: break;
      }
    }
    if (!report.outputs.empty()) {
      report.stats = stats();
      MSI_RETURN_IF_ERROR(attach_counts(false));
      MSI_RETURN_IF_ERROR(outbox.emit(report));
    }

    MSI_ASSIGN_OR_RETURN(std::vector<ScheduledChunk> planned, scheduler.schedule());
    chunks.clear();
    size_t n_logits = 0;
    for (const ScheduledChunk& c : planned) {
      chunks.push_back({c.id, c.tokens, c.want_logits});
      n_logits += c.want_logits ? 1 : 0;
    }
    const uint32_t probe = kFlagIdle | (shutting_down && !scheduler.has_work() ? kFlagShutdown : 0u);
    uint32_t reply = 0;
    // Steps that need no logits on the host sample on the device: only the ids cross (a batch's
    // logits are vocab × 4 bytes per sequence).
    const bool device_sampling = !chunks.empty() && scheduler.device_sampling_params(params_);
    MSI_RETURN_IF_ERROR(run_step(chunks, step, probe, &reply, device_sampling));
    n_counted_steps += chunks.empty() ? 0 : 1;
    if ((chunks.empty() || (reply & kFlagStop)) && n_counted_steps > 0) {  // idle or stopping: flush
      report.outputs.clear();
      report.stats = stats();
      MSI_RETURN_IF_ERROR(attach_counts(true));
      MSI_RETURN_IF_ERROR(outbox.emit(report));
    }
    if (reply & kFlagStop) {
      if (device_) device_->flush_into(*timeline_);
      return Status::ok();
    }
    // A step with logits ended by reading them (or the sampled ids) back: the device has reached
    // every mark, so resolving them now waits for nothing.
    if (device_ && n_logits > 0 && device_->half_full()) device_->flush_into(*timeline_);
    if (reply & kFlagAllIdle) {
      // Everyone is idle: sleep until an event. Not if an event came in this step (a wake may
      // stand for work another worker has not seen yet), and not while shutting down: the others
      // must find this worker stepping when their events arrive.
      idle_wait = !shutting_down && events.empty();
      continue;
    }
    if (chunks.empty()) continue;
    report.outputs.clear();
    Timeline::Span sample = timeline_ ? timeline_->begin(SpanKind::kLogits, {step, -1, -1}) : Timeline::Span{};
    if (device_sampling) {
      scheduler.update_tokens(std::span<const int32_t>(ids_.data(), n_logits), report.outputs);
    } else {
      scheduler.update(std::span<const float>(logits_.data(), n_logits * static_cast<size_t>(config_.vocab_size)),
                       report.outputs);
    }
    if (timeline_) timeline_->end(sample);
    report.stats = stats();
    MSI_RETURN_IF_ERROR(attach_counts(false));
    MSI_RETURN_IF_ERROR(outbox.emit(report));
  }
}

}  // namespace msi

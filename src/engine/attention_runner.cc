#include "engine/attention_runner.h"

#include <algorithm>
#include <memory>

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
}

Status AttentionRunner::run_step(std::span<const SeqChunk> chunks, int64_t step, uint32_t probe_flags,
                                 uint32_t* reply, bool device_sampling) {
  *reply = 0;
  const bool idle = chunks.empty();
  if (!idle) after_idle_step_ = false;
  if (options_.use_graphs && worker_.graph_eligible(chunks, options_.n_micro_batches, link_)) {
    // A whole decode step in one device launch (no per-op launches on the host).
    Timeline::Span span = timeline_ ? timeline_->begin(SpanKind::kAttention, {step, -1, 0}, static_cast<int64_t>(chunks.size()))
                                    : Timeline::Span{};
    Status st = worker_.run_decode_graph(chunks, step, link_, device_sampling ? nullptr : logits_.data(),
                                         device_sampling ? ids_.data() : nullptr, params_.data());
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
    Result<uint32_t> flags = worker_.layer_combine(layer, mb, link_);
    if (timeline_) timeline_->end(wait);
    return flags.status();
  };
  for (int l = 0; l < n_layers; ++l) {
    for (int mb = 0; mb < n_mb; ++mb) {
      // The idle probe's reply was already read right after it was sent.
      const bool probe_done = idle && l - 1 == first_moe_layer_ && mb == 0;
      if (l > 0 && !probe_done) MSI_RETURN_IF_ERROR(combine(l - 1, mb));
      const bool probe = idle && l == first_moe_layer_ && mb == 0;
      Timeline::Span span = timeline_ ? timeline_->begin(SpanKind::kAttention, {step, l, mb}, worker_.micro_batch_tokens(mb))
                                      : Timeline::Span{};
      MSI_RETURN_IF_ERROR(worker_.layer_attention(l, mb, link_, probe ? probe_flags : 0u));
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
  Status st = device_sampling ? worker_.finish_step_sample(params_.data(), ids_.data())
                              : worker_.finish_step(logits_.data());
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
    if (reply & kFlagStop) return Status::ok();
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
    MSI_RETURN_IF_ERROR(outbox.emit(report));
  }
}

}  // namespace msi

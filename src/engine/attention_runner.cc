#include "engine/attention_runner.h"

#include <algorithm>
#include <memory>

#include "roles/moe_message.h"

namespace msi {

AttentionRunner::AttentionRunner(const ModelConfig& config, AttentionWorker& worker, ExpertLink& link,
                                 const RunnerOptions& options, Timeline* timeline)
    : config_(config), worker_(worker), link_(link), options_(options), timeline_(timeline),
      logits_(static_cast<size_t>(options.max_seqs * config.vocab_size)) {
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.is_moe_layer(l)) {
      first_moe_layer_ = l;
      break;
    }
  }
  MSI_CHECK(first_moe_layer_ >= 0, "a model without MoE layers has no expert workers to talk to");
}

Status AttentionRunner::run_step(std::span<const SeqChunk> chunks, int64_t step, uint32_t probe_flags,
                                 uint32_t* reply) {
  *reply = 0;
  const bool idle = chunks.empty();
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
        Timeline::Span wait = timeline_ ? timeline_->begin(SpanKind::kAttentionWait, {step, l, mb}) : Timeline::Span{};
        Result<uint32_t> flags = worker_.layer_combine(l, mb, link_);
        if (timeline_) timeline_->end(wait);
        if (!flags.is_ok()) return flags.status();
        *reply = *flags;
        if (*flags & (kFlagStop | kFlagAllIdle)) return Status::ok();
      }
    }
  }
  for (int mb = 0; mb < n_mb; ++mb) {
    const bool probe_done = idle && n_layers - 1 == first_moe_layer_ && mb == 0;
    if (!probe_done) MSI_RETURN_IF_ERROR(combine(n_layers - 1, mb));
  }
  Timeline::Span logits = timeline_ ? timeline_->begin(SpanKind::kLogits, {step, -1, -1}) : Timeline::Span{};
  Status st = worker_.finish_step(logits_.data());
  if (timeline_) timeline_->end(logits);
  return st;
}

Result<std::vector<GenerateResult>> AttentionRunner::run(const std::vector<GenerateRequest>& requests) {
  SchedulerConfig sc;
  sc.max_batched_tokens = options_.max_batched_tokens;
  sc.max_seqs = options_.max_seqs;
  sc.max_model_len = options_.max_model_len;
  sc.vocab_size = config_.vocab_size;
  sc.eos_token_ids = config_.eos_token_ids;
  Scheduler scheduler(sc, worker_);
  Status status = Status::ok();
  for (size_t i = 0; i < requests.size() && status.is_ok(); ++i) {
    SchedRequest r;
    r.id = static_cast<int64_t>(i);
    r.prompt = requests[i].prompt;
    r.sampling = requests[i].sampling;
    r.return_logits = requests[i].return_logits;
    r.fallback_seed = options_.seed + i;
    status = scheduler.add(std::move(r));
  }

  std::vector<GenerateResult> results(requests.size());
  std::vector<SeqChunk> chunks;
  chunks.reserve(static_cast<size_t>(options_.max_seqs));
  std::vector<SeqOutput> outputs;
  for (int64_t step = 0; status.is_ok(); ++step) {
    Result<std::vector<ScheduledChunk>> planned = scheduler.schedule();
    if (!planned.is_ok()) {
      status = planned.status();
      break;
    }
    chunks.clear();
    size_t n_logits = 0;
    for (const ScheduledChunk& c : *planned) {
      chunks.push_back({c.id, c.tokens, c.want_logits});
      n_logits += c.want_logits ? 1 : 0;
    }
    // Done for good once nothing is left: the deployment stops when every worker is.
    const uint32_t probe = kFlagIdle | (scheduler.has_work() ? 0u : kFlagShutdown);
    uint32_t reply = 0;
    status = run_step(chunks, step, probe, &reply);
    if (!status.is_ok() || (reply & kFlagStop)) break;
    if (chunks.empty()) continue;
    outputs.clear();
    Timeline::Span sample = timeline_ ? timeline_->begin(SpanKind::kLogits, {step, -1, -1}) : Timeline::Span{};
    scheduler.update(std::span<const float>(logits_.data(), n_logits * static_cast<size_t>(config_.vocab_size)), outputs);
    if (timeline_) timeline_->end(sample);
    for (SeqOutput& o : outputs) {
      GenerateResult& r = results[static_cast<size_t>(o.id)];
      r.output_ids.push_back(o.token);
      if (!o.logits.empty()) r.logits.push_back(std::move(o.logits));
      if (o.finished) r.finish_reason = o.finish_reason;
    }
  }
  if (!status.is_ok()) return status;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].finish_reason.empty()) {
      return error(StatusCode::kInternal, "the deployment stopped before request {} finished", i);
    }
  }
  return results;
}

}  // namespace msi

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

Status AttentionRunner::run_step(std::span<const SeqChunk> chunks, int64_t step, bool* stop) {
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
      MSI_RETURN_IF_ERROR(worker_.layer_attention(l, mb, link_, probe ? kFlagIdle : 0u));
      if (timeline_) timeline_->end(span);
      if (probe) {
        // An idle worker learns at once whether the whole deployment is done.
        Timeline::Span wait = timeline_ ? timeline_->begin(SpanKind::kAttentionWait, {step, l, mb}) : Timeline::Span{};
        Result<uint32_t> flags = worker_.layer_combine(l, mb, link_);
        if (timeline_) timeline_->end(wait);
        if (!flags.is_ok()) return flags.status();
        if (*flags & kFlagStop) {
          *stop = true;
          return Status::ok();
        }
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

namespace {

struct SeqState {
  int64_t seq_id = 0;
  size_t prefilled = 0;  // prompt tokens already in the KV cache
  bool finished = false;
  int32_t last_token = 0;
  std::unique_ptr<Sampler> sampler;
};

}  // namespace

Result<std::vector<GenerateResult>> AttentionRunner::run(const std::vector<GenerateRequest>& requests) {
  std::vector<GenerateResult> results(requests.size());
  std::vector<SeqState> seqs(requests.size());
  Status status = Status::ok();
  // Admission: every request must fit in the KV cache to completion.
  for (size_t i = 0; i < requests.size() && status.is_ok(); ++i) {
    seqs[i].seq_id = static_cast<int64_t>(i);
    seqs[i].sampler = std::make_unique<Sampler>(requests[i].sampling, options_.seed + i);
    status = worker_.add_sequence(seqs[i].seq_id);
    const int64_t need = std::min<int64_t>(
        static_cast<int64_t>(requests[i].prompt.size()) + requests[i].sampling.max_tokens, options_.max_model_len);
    if (status.is_ok()) status = worker_.reserve(seqs[i].seq_id, need);
  }

  std::vector<SeqChunk> chunks;
  std::vector<size_t> chunk_req;
  chunks.reserve(static_cast<size_t>(options_.max_seqs));
  chunk_req.reserve(static_cast<size_t>(options_.max_seqs));
  for (int64_t step = 0; status.is_ok(); ++step) {
    chunks.clear();
    chunk_req.clear();
    int64_t budget = options_.max_batched_tokens;
    for (size_t i = 0; i < seqs.size() && budget > 0 && static_cast<int64_t>(chunks.size()) < options_.max_seqs; ++i) {
      SeqState& s = seqs[i];
      if (s.finished) continue;
      const auto& prompt = requests[i].prompt;
      if (s.prefilled < prompt.size()) {  // prefill, chunked under the token budget
        const size_t take = std::min<size_t>(prompt.size() - s.prefilled, static_cast<size_t>(budget));
        chunks.push_back({s.seq_id, std::span<const int32_t>(prompt.data() + s.prefilled, take),
                          s.prefilled + take == prompt.size()});
        s.prefilled += take;
        budget -= static_cast<int64_t>(take);
      } else {
        chunks.push_back({s.seq_id, std::span<const int32_t>(&s.last_token, 1), true});
        budget -= 1;
      }
      chunk_req.push_back(i);
    }
    bool stop = false;
    status = run_step(chunks, step, &stop);
    if (!status.is_ok() || stop) break;

    size_t row = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (!chunks[c].want_logits) continue;
      const size_t i = chunk_req[c];
      SeqState& s = seqs[i];
      const float* logits = logits_.data() + row++ * static_cast<size_t>(config_.vocab_size);
      GenerateResult& r = results[i];
      const SamplingParams& sp = requests[i].sampling;
      if (requests[i].return_logits) r.logits.emplace_back(logits, logits + config_.vocab_size);
      const int32_t tok = s.sampler->sample(logits, config_.vocab_size);
      r.output_ids.push_back(tok);
      s.last_token = tok;
      const bool eos = std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), tok) !=
                       config_.eos_token_ids.end();
      const int64_t total = static_cast<int64_t>(requests[i].prompt.size() + r.output_ids.size());
      if (eos && !sp.ignore_eos) {
        r.finish_reason = "stop";
      } else if (static_cast<int64_t>(r.output_ids.size()) >= sp.max_tokens || total >= options_.max_model_len) {
        r.finish_reason = "length";
      } else {
        continue;
      }
      s.finished = true;
      worker_.free_sequence(s.seq_id);
    }
  }
  for (SeqState& s : seqs) worker_.free_sequence(s.seq_id);  // on error, release everything
  if (!status.is_ok()) return status;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].finish_reason.empty()) {
      return error(StatusCode::kInternal, "the deployment stopped before request {} finished", i);
    }
  }
  return results;
}

}  // namespace msi

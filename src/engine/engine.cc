#include "engine/engine.h"

#include <algorithm>
#include <random>

#include "backend/registry.h"
#include "core/logging.h"
#include "model/dummy.h"
#include "model/safetensors.h"

namespace msi {

Engine::~Engine() = default;

int64_t kv_blocks_needed(const std::vector<GenerateRequest>& requests, int64_t max_model_len,
                         int64_t block_size) {
  int64_t blocks = 0;
  for (const GenerateRequest& r : requests) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.sampling.max_tokens,
                                          max_model_len);
    blocks += (len + block_size - 1) / block_size;
  }
  return std::max<int64_t>(blocks, 1);
}

Result<std::unique_ptr<Engine>> Engine::create(const std::filesystem::path& model_dir,
                                               const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  const nlohmann::json* overrides = options.hf_overrides.is_null() ? nullptr : &options.hf_overrides;
  MSI_ASSIGN_OR_RETURN(e->config_, load_model_config(model_dir, overrides));
  const ModelConfig& cfg = e->config_;
  e->max_model_len_ = options.max_model_len > 0 ? options.max_model_len : cfg.max_position_embeddings;
  if (e->max_model_len_ > cfg.max_position_embeddings) {
    return error(StatusCode::kInvalidArgument, "--max-model-len {} exceeds the model's max_position_embeddings {}",
                 e->max_model_len_, cfg.max_position_embeddings);
  }
  if (options.n_micro_batches < 1) {
    return error(StatusCode::kInvalidArgument, "--micro-batches must be at least 1");
  }
  MSI_ASSIGN_OR_RETURN(e->backend_, make_backend(options.device));

  std::unique_ptr<TensorSource> source;
  if (options.load_format == "dummy") {
    source = make_dummy_source(cfg, options.dummy_seed);
  } else if (options.load_format == "auto" || options.load_format == "safetensors") {
    MSI_ASSIGN_OR_RETURN(source, open_checkpoint(model_dir));
  } else {
    return error(StatusCode::kInvalidArgument, "unknown --load-format '{}' (auto, safetensors, dummy)",
                 options.load_format);
  }

  MSI_ASSIGN_OR_RETURN(e->placement_, ExpertPlacement::contiguous(cfg.n_experts, options.n_expert_workers));
  MSI_ASSIGN_OR_RETURN(AttentionWeights aw, load_attention_weights(cfg, *source, *e->backend_));
  AttentionWorkerOptions ao;
  ao.max_batched_tokens = options.max_batched_tokens;
  ao.max_seqs = options.max_seqs;
  ao.kv_block_size = options.kv_block_size;
  ao.kv_n_blocks = options.kv_n_blocks;
  ao.max_model_len = e->max_model_len_;
  ao.max_micro_batches = std::max(options.n_micro_batches, 1);
  MSI_ASSIGN_OR_RETURN(e->attention_, AttentionWorker::create(cfg, *e->backend_, std::move(aw), ao));

  std::vector<ExpertWorker*> workers;
  for (int64_t w = 0; w < e->placement_.n_workers(); ++w) {
    MSI_ASSIGN_OR_RETURN(ExpertWeights ew,
                         load_expert_weights(cfg, *source, *e->backend_, e->placement_.experts_of(w)));
    e->experts_.push_back(std::make_unique<ExpertWorker>(cfg, *e->backend_, std::move(ew),
                                                         options.max_batched_tokens));
    workers.push_back(e->experts_.back().get());
  }
  e->link_ = std::make_unique<LocalExpertLink>(*e->backend_, e->placement_, std::move(workers),
                                               options.max_batched_tokens, cfg.hidden_size,
                                               cfg.n_experts_per_tok);
  e->logits_host_.resize(static_cast<size_t>(options.max_seqs * cfg.vocab_size));
  return e;
}

Status Engine::run_step(std::span<const SeqChunk> chunks, int64_t step, float* logits) {
  MSI_RETURN_IF_ERROR(attention_->begin_step(chunks, options_.n_micro_batches, step));
  const int n_mb = attention_->n_micro_batches();
  for (int l = 0; l < config_.n_layers; ++l) {
    for (int mb = 0; mb < n_mb; ++mb) {
      MSI_RETURN_IF_ERROR(attention_->layer_attention(l, mb, *link_));
      MSI_RETURN_IF_ERROR(attention_->layer_combine(l, mb, *link_));
    }
  }
  return attention_->finish_step(logits);
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

Result<std::vector<GenerateResult>> Engine::generate(const std::vector<GenerateRequest>& requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& p = requests[i].prompt;
    if (p.empty()) return error(StatusCode::kInvalidArgument, "prompt {} is empty", i);
    if (static_cast<int64_t>(p.size()) >= max_model_len_) {
      return error(StatusCode::kOutOfRange, "prompt {} has {} tokens; the maximum model length is {}", i,
                   p.size(), max_model_len_);
    }
    for (int32_t tok : p) {
      if (tok < 0 || tok >= config_.vocab_size) {
        return error(StatusCode::kOutOfRange, "prompt {}: token id {} is outside the vocabulary [0, {})", i,
                     tok, config_.vocab_size);
      }
    }
    if (requests[i].sampling.max_tokens < 1) {
      return error(StatusCode::kInvalidArgument, "max_tokens must be at least 1");
    }
  }

  std::vector<GenerateResult> results(requests.size());
  std::vector<SeqState> seqs(requests.size());
  std::random_device rd;
  Status status = Status::ok();
  // Admission: all requests must fit in the KV cache to completion.
  for (size_t i = 0; i < requests.size() && status.is_ok(); ++i) {
    seqs[i].seq_id = next_seq_id_++;
    seqs[i].sampler = std::make_unique<Sampler>(requests[i].sampling, (static_cast<uint64_t>(rd()) << 32) | rd());
    status = attention_->add_sequence(seqs[i].seq_id);
    const int64_t need = std::min<int64_t>(
        static_cast<int64_t>(requests[i].prompt.size()) + requests[i].sampling.max_tokens, max_model_len_);
    if (status.is_ok()) status = attention_->reserve(seqs[i].seq_id, need);
  }

  std::vector<SeqChunk> chunks;
  std::vector<size_t> chunk_req;
  chunks.reserve(static_cast<size_t>(options_.max_seqs));
  while (status.is_ok()) {
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
    if (chunks.empty()) break;
    status = run_step(chunks, next_step_++, logits_host_.data());
    if (!status.is_ok()) break;

    size_t row = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (!chunks[c].want_logits) continue;
      const size_t i = chunk_req[c];
      SeqState& s = seqs[i];
      const float* logits = logits_host_.data() + row++ * static_cast<size_t>(config_.vocab_size);
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
      } else if (static_cast<int64_t>(r.output_ids.size()) >= sp.max_tokens || total >= max_model_len_) {
        r.finish_reason = "length";
      } else {
        continue;
      }
      s.finished = true;
      attention_->free_sequence(s.seq_id);
    }
  }
  for (SeqState& s : seqs) attention_->free_sequence(s.seq_id);  // on error, release everything
  if (!status.is_ok()) return status;
  return results;
}

}  // namespace msi

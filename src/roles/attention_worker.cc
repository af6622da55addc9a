#include "roles/attention_worker.h"

#include <algorithm>
#include <cmath>

namespace msi {

Result<std::unique_ptr<AttentionWorker>> AttentionWorker::create(
    const ModelConfig& config, Backend& backend, AttentionWeights weights,
    const AttentionWorkerOptions& options) {
  if (options.kv_n_blocks <= 0 || options.kv_block_size <= 0) {
    return error(StatusCode::kInvalidArgument, "KV cache needs at least one block (got {} blocks of {})",
                 options.kv_n_blocks, options.kv_block_size);
  }
  if (options.max_batched_tokens <= 0 || options.max_seqs <= 0 || options.max_model_len <= 0 ||
      options.max_micro_batches <= 0) {
    return error(StatusCode::kInvalidArgument, "attention worker limits must be positive");
  }
  return std::unique_ptr<AttentionWorker>(new AttentionWorker(config, backend, std::move(weights), options));
}

AttentionWorker::AttentionWorker(const ModelConfig& config, Backend& backend, AttentionWeights weights,
                                 const AttentionWorkerOptions& options)
    : config_(config), backend_(backend), w_(std::move(weights)), opt_(options),
      pool_(options.kv_n_blocks, options.kv_block_size) {
  const DType dt = backend.compute_dtype();
  const int64_t t = options.max_batched_tokens, s = options.max_seqs, h = config.hidden_size;
  const int64_t max_blocks = (options.max_model_len + options.kv_block_size - 1) / options.kv_block_size;
  attn_shape_ = AttentionShape{config.n_heads, config.n_kv_heads, config.head_dim, options.kv_block_size,
                               max_blocks, 1.0f / std::sqrt(static_cast<float>(config.head_dim))};
  for (int64_t l = 0; l < config.n_layers; ++l) {
    k_cache_.push_back(backend.alloc(dt, {options.kv_n_blocks * options.kv_block_size, config.kv_dim()}));
    v_cache_.push_back(backend.alloc(dt, {options.kv_n_blocks * options.kv_block_size, config.kv_dim()}));
  }
  token_ids_ = backend.alloc(DType::kI32, {t});
  positions_ = backend.alloc(DType::kI32, {t});
  slot_mapping_ = backend.alloc(DType::kI32, {t});
  token_seq_ = backend.alloc(DType::kI32, {t});
  block_tables_ = backend.alloc(DType::kI32, {s, max_blocks});
  logit_rows_ = backend.alloc(DType::kI32, {s});
  residual_ = backend.alloc(dt, {t, h});
  normed_ = backend.alloc(dt, {t, h});
  q_ = backend.alloc(dt, {t, config.q_dim()});
  k_ = backend.alloc(dt, {t, config.kv_dim()});
  v_ = backend.alloc(dt, {t, config.kv_dim()});
  attn_out_ = backend.alloc(dt, {t, config.q_dim()});
  proj_out_ = backend.alloc(dt, {t, h});
  moe_out_ = backend.alloc(dt, {t, h});
  const int64_t n_experts = std::max<int64_t>(config.n_experts, 1);
  const int64_t top_k = std::max<int64_t>(config.n_experts_per_tok, 1);
  router_logits_ = backend.alloc(DType::kF32, {t, n_experts});
  topk_ids_ = backend.alloc(DType::kI32, {t, top_k});
  topk_weights_ = backend.alloc(DType::kF32, {t, top_k});
  shared_gate_logit_ = backend.alloc(dt, {t, 1});
  mlp_out_ = backend.alloc(dt, {t, h});
  const int64_t inter = std::max(config.intermediate_size, config.shared_expert_intermediate_size);
  mlp_scratch_ = backend.alloc(dt, {2 * t * std::max<int64_t>(inter, 1)});
  final_rows_ = backend.alloc(dt, {s, h});
  final_normed_ = backend.alloc(dt, {s, h});
  logits_ = backend.alloc(DType::kF32, {s, config.vocab_size});
  sampled_ids_ = backend.alloc(DType::kI32, {s});
  sample_params_ = backend.alloc(DType::kF32, {s, 4});
  h_sample_params_.reserve(static_cast<size_t>(4 * s));
  expert_counts_ = backend.alloc(DType::kI32, {config.n_layers, n_experts});  // zero-filled
  n_valid_ = backend.alloc(DType::kI32, {1});
  h_expert_counts_.resize(static_cast<size_t>(config.n_layers * n_experts));

  h_tokens_.reserve(static_cast<size_t>(t));
  h_positions_.reserve(static_cast<size_t>(t));
  h_slots_.reserve(static_cast<size_t>(t));
  h_token_seq_.reserve(static_cast<size_t>(t));
  h_block_tables_.reserve(static_cast<size_t>(s * max_blocks));
  h_logit_rows_.reserve(static_cast<size_t>(s));
  mb_token_begin_.reserve(static_cast<size_t>(options.max_micro_batches + 1));
}

int64_t AttentionWorker::n_cached_tokens(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? 0 : it->second.n_tokens;
}

Status AttentionWorker::add_sequence(int64_t seq_id) {
  if (!seqs_.emplace(seq_id, BlockTable{}).second) {
    return error(StatusCode::kInvalidArgument, "sequence {} already exists", seq_id);
  }
  return Status::ok();
}

Status AttentionWorker::reserve(int64_t seq_id, int64_t n_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return error(StatusCode::kNotFound, "no sequence {}", seq_id);
  if (n_tokens > opt_.max_model_len) {
    return error(StatusCode::kOutOfRange, "sequence {} needs {} tokens, the maximum model length is {}",
                 seq_id, n_tokens, opt_.max_model_len);
  }
  return reserve_tokens(pool_, it->second, n_tokens)
      .with_context(fmt::format("KV cache too small for sequence {} ({} tokens)", seq_id, n_tokens));
}

void AttentionWorker::free_sequence(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  pool_.free(it->second.blocks);
  seqs_.erase(it);
}

Status AttentionWorker::begin_step(std::span<const SeqChunk> chunks, int n_micro_batches, int64_t step) {
  MSI_RETURN_IF_ERROR(plan_step(chunks, n_micro_batches, step, 0));
  count_rows_ = Tensor{};  // no padding: every routed row counts
  embed();
  return Status::ok();
}

void AttentionWorker::embed() {
  if (n_step_tokens_ == 0) return;
  if (marker_) marker_->mark(Stage::kOther);
  backend_.embedding(w_.embed.tensor, token_ids_.tensor.slice_rows(0, n_step_tokens_),
                     residual_.tensor.slice_rows(0, n_step_tokens_));
}

Status AttentionWorker::plan_step(std::span<const SeqChunk> chunks, int n_micro_batches, int64_t step,
                                  int64_t pad_to) {
  if (n_micro_batches < 1 || n_micro_batches > opt_.max_micro_batches) {
    return error(StatusCode::kInvalidArgument, "micro-batches must be in [1, {}], got {}",
                 opt_.max_micro_batches, n_micro_batches);
  }
  if (static_cast<int64_t>(chunks.size()) > opt_.max_seqs) {
    return error(StatusCode::kInvalidArgument, "step has {} sequences, the limit is {}", chunks.size(),
                 opt_.max_seqs);
  }
  // Validate everything before changing any state.
  int64_t total = 0;
  for (const SeqChunk& c : chunks) {
    auto it = seqs_.find(c.seq_id);
    if (it == seqs_.end()) return error(StatusCode::kNotFound, "no sequence {}", c.seq_id);
    if (c.tokens.empty()) return error(StatusCode::kInvalidArgument, "sequence {}: empty chunk", c.seq_id);
    const int64_t end = it->second.n_tokens + static_cast<int64_t>(c.tokens.size());
    if (end > opt_.max_model_len) {
      return error(StatusCode::kOutOfRange, "sequence {} would reach {} tokens, the maximum model length is {}",
                   c.seq_id, end, opt_.max_model_len);
    }
    for (int32_t tok : c.tokens) {
      if (tok < 0 || tok >= config_.vocab_size) {
        return error(StatusCode::kOutOfRange, "token id {} is outside the vocabulary [0, {})", tok,
                     config_.vocab_size);
      }
    }
    total += static_cast<int64_t>(c.tokens.size());
  }
  if (total > opt_.max_batched_tokens) {
    return error(StatusCode::kInvalidArgument, "step has {} tokens, the limit is {}", total,
                 opt_.max_batched_tokens);
  }
  for (const SeqChunk& c : chunks) {
    const int64_t end = seqs_[c.seq_id].n_tokens + static_cast<int64_t>(c.tokens.size());
    MSI_RETURN_IF_ERROR(reserve(c.seq_id, end));
  }

  // Plan: token layout in chunk order, positions, KV slots, block tables, logit rows.
  step_ = step;
  h_tokens_.clear();
  h_positions_.clear();
  h_slots_.clear();
  h_token_seq_.clear();
  h_logit_rows_.clear();
  const int64_t max_blocks = attn_shape_.max_blocks_per_seq;
  h_block_tables_.assign(static_cast<size_t>(chunks.size() * max_blocks), 0);
  for (size_t i = 0; i < chunks.size(); ++i) {
    BlockTable& table = seqs_[chunks[i].seq_id];
    for (int32_t tok : chunks[i].tokens) {
      const int64_t pos = table.n_tokens++;
      h_tokens_.push_back(tok);
      h_positions_.push_back(static_cast<int32_t>(pos));
      h_slots_.push_back(table.slot(pos, opt_.kv_block_size));
      h_token_seq_.push_back(static_cast<int32_t>(i));
    }
    std::copy(table.blocks.begin(), table.blocks.end(), h_block_tables_.begin() + static_cast<int64_t>(i) * max_blocks);
    if (chunks[i].want_logits) h_logit_rows_.push_back(static_cast<int32_t>(h_tokens_.size() - 1));
  }
  n_real_logit_rows_ = static_cast<int64_t>(h_logit_rows_.size());
  if (pad_to > total) {
    // Padding tokens: token 0 at position 0 of chunk 0's sequence, no KV slot (-1: not written);
    // their logits rows repeat row 0 and are dropped.
    for (int64_t i = total; i < pad_to; ++i) {
      h_tokens_.push_back(0);
      h_positions_.push_back(0);
      h_slots_.push_back(-1);
      h_token_seq_.push_back(0);
    }
    while (static_cast<int64_t>(h_logit_rows_.size()) < pad_to) h_logit_rows_.push_back(0);
    total = pad_to;
  }
  n_step_tokens_ = total;
  n_logit_rows_ = static_cast<int64_t>(h_logit_rows_.size());

  // Micro-batches: whole chunks, split where the running token count crosses total * j / m
  // (a chunk goes to the earlier micro-batch if its midpoint is before the boundary).
  mb_token_begin_.assign(1, 0);
  size_t c = 0;
  int64_t cum = 0;
  for (int j = 1; j <= n_micro_batches; ++j) {
    const double target = static_cast<double>(total) * j / n_micro_batches;
    while (c < chunks.size() &&
           (j == n_micro_batches || cum + static_cast<double>(chunks[c].tokens.size()) / 2.0 <= target)) {
      cum += static_cast<int64_t>(chunks[c].tokens.size());
      ++c;
    }
    mb_token_begin_.push_back(cum);
  }
  mb_token_begin_.back() = total;  // padding tokens (graphs) ride in the last micro-batch

  const auto n = static_cast<size_t>(total);
  backend_.copy_from_host(token_ids_.tensor, h_tokens_.data(), n * sizeof(int32_t));
  backend_.copy_from_host(positions_.tensor, h_positions_.data(), n * sizeof(int32_t));
  backend_.copy_from_host(slot_mapping_.tensor, h_slots_.data(), n * sizeof(int32_t));
  backend_.copy_from_host(token_seq_.tensor, h_token_seq_.data(), n * sizeof(int32_t));
  backend_.copy_from_host(block_tables_.tensor, h_block_tables_.data(), h_block_tables_.size() * sizeof(int32_t));
  backend_.copy_from_host(logit_rows_.tensor, h_logit_rows_.data(), h_logit_rows_.size() * sizeof(int32_t));
  return Status::ok();
}

int64_t AttentionWorker::graph_bucket(int64_t n) const {
  const int64_t cap = std::min(opt_.max_seqs, opt_.max_batched_tokens);
  int64_t b = 1;
  while (b < n) b = b < 16 ? 2 * b : b + (b < 128 ? 16 : 64);  // 1, 2, 4, 8, 16, 32, ..., 128, 192, ...
  return std::min(b, cap);
}

bool AttentionWorker::graph_eligible(std::span<const SeqChunk> chunks, int n_micro_batches,
                                     const ExpertLink& link) const {
  if (chunks.empty() || n_micro_batches != 1 || marker_ != nullptr || !link.device_local()) return false;
  if (backend_.device().kind != DeviceKind::kCuda) return false;  // the only backend with graphs
  if (static_cast<int64_t>(chunks.size()) > std::min(opt_.max_seqs, opt_.max_batched_tokens)) return false;
  return std::all_of(chunks.begin(), chunks.end(), [](const SeqChunk& c) { return c.tokens.size() == 1 && c.want_logits; });
}

Status AttentionWorker::run_decode_graph(std::span<const SeqChunk> chunks, int64_t step, ExpertLink& link,
                                         float* logits_out, int32_t* ids_out, const float* sample_params) {
  MSI_CHECK((logits_out == nullptr) != (ids_out == nullptr), "run_decode_graph: one output");
  MSI_CHECK(graph_eligible(chunks, 1, link), "run_decode_graph: the step does not qualify");
  const int64_t bucket = graph_bucket(static_cast<int64_t>(chunks.size()));
  MSI_RETURN_IF_ERROR(plan_step(chunks, 1, step, bucket));
  // The expert tallies read the real row count on the device: the graph is recorded once per
  // bucket and replayed with other counts.
  const auto n_real = static_cast<int32_t>(chunks.size());
  backend_.copy_from_host(n_valid_.tensor, &n_real, sizeof(n_real));
  count_rows_ = n_valid_.tensor;
  // Sampling parameters of the real rows; padding rows are greedy (all zero).
  h_sample_params_.assign(static_cast<size_t>(4 * bucket), 0.0f);
  if (sample_params != nullptr) {
    std::copy(sample_params, sample_params + 4 * n_real_logit_rows_, h_sample_params_.begin());
  }
  backend_.copy_from_host(sample_params_.tensor.slice_rows(0, bucket), h_sample_params_.data(),
                          h_sample_params_.size() * sizeof(float));
  // The step body: what the graph records.
  auto body = [&]() -> Status {
    embed();
    const int n_layers = static_cast<int>(config_.n_layers);
    for (int l = 0; l < n_layers; ++l) {
      if (l > 0) MSI_RETURN_IF_ERROR(layer_combine(l - 1, 0, link).status());
      MSI_RETURN_IF_ERROR(layer_attention(l, 0, link));
    }
    MSI_RETURN_IF_ERROR(layer_combine(n_layers - 1, 0, link).status());
    compute_logits();
    backend_.sample_rows(logits_.tensor.slice_rows(0, bucket), sample_params_.tensor.slice_rows(0, bucket),
                         sampled_ids_.tensor.slice_rows(0, bucket));
    return Status::ok();
  };
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) {
    // First step of this size: run it op by op (which also does every kernel's one-time setup,
    // such as raising its shared-memory limit, outside a capture), then record the graph for the
    // next ones.
    MSI_RETURN_IF_ERROR(body());
    Status inner;
    std::unique_ptr<DeviceGraph> graph = backend_.capture([&] { inner = body(); });
    MSI_RETURN_IF_ERROR(inner);
    if (graph == nullptr) return error(StatusCode::kUnimplemented, "backend {} records no graphs", backend_.name());
    graphs_.emplace(bucket, std::move(graph));
  } else {
    it->second->launch();
  }
  const int64_t n = n_real_logit_rows_;
  if (ids_out != nullptr) {
    backend_.copy_to_host(ids_out, sampled_ids_.tensor.slice_rows(0, n), static_cast<size_t>(n) * sizeof(int32_t));
  } else {
    const Tensor logits = logits_.tensor.slice_rows(0, n);
    backend_.copy_to_host(logits_out, logits, logits.nbytes());
  }
  return Status::ok();
}

Tensor AttentionWorker::rows(const OwnedTensor& t, int mb) const {
  return t.tensor.slice_rows(mb_token_begin_[mb], micro_batch_tokens(mb));
}

Status AttentionWorker::layer_attention(int layer, int mb, ExpertLink& link, uint32_t flags) {
  const AttentionLayerWeights& lw = w_.layers[static_cast<size_t>(layer)];
  const bool moe = config_.is_moe_layer(layer);
  const UnitId unit{step_, static_cast<int32_t>(layer), static_cast<int32_t>(mb)};
  const int64_t n = micro_batch_tokens(mb);
  const Tensor x = rows(normed_, mb);
  const Tensor residual = rows(residual_, mb);
  const Tensor moe_out = rows(moe_out_, mb);
  const Tensor topk_ids = rows(topk_ids_, mb);
  const Tensor topk_weights = rows(topk_weights_, mb);
  if (n == 0) {  // an empty micro-batch still sends (empty) messages: receivers count on M
    return moe ? link.send(unit, x, topk_ids, topk_weights, flags) : Status::ok();
  }
  const float eps = config_.rms_norm_eps;
  if (marker_) marker_->mark(Stage::kAttention);
  if (layer == 0) {
    backend_.rms_norm(residual, lw.attn_norm.tensor, x, eps);
  } else {
    backend_.add_rms_norm(residual, moe_out, lw.attn_norm.tensor, x, eps);  // previous layer's FFN
  }

  // Attention: [n, hidden] → q [n, n_heads*hd], k/v [n, n_kv*hd] → out [n, hidden].
  const Tensor q = rows(q_, mb), k = rows(k_, mb), v = rows(v_, mb);
  backend_.linear(x, lw.q_proj.tensor, lw.q_bias.tensor, q);
  backend_.linear(x, lw.k_proj.tensor, lw.k_bias.tensor, k);
  backend_.linear(x, lw.v_proj.tensor, lw.v_bias.tensor, v);
  const int64_t hd = config_.head_dim;
  if (config_.qk_norm) {
    backend_.rms_norm(q.reshape({n * config_.n_heads, hd}), lw.q_norm.tensor, q.reshape({n * config_.n_heads, hd}), eps);
    backend_.rms_norm(k.reshape({n * config_.n_kv_heads, hd}), lw.k_norm.tensor, k.reshape({n * config_.n_kv_heads, hd}), eps);
  }
  const Tensor pos = rows(positions_, mb);
  backend_.rope(q, pos, config_.n_heads, hd, config_.rope_theta);
  backend_.rope(k, pos, config_.n_kv_heads, hd, config_.rope_theta);
  backend_.kv_append(k, v, k_cache_[static_cast<size_t>(layer)].tensor, v_cache_[static_cast<size_t>(layer)].tensor,
                     rows(slot_mapping_, mb));
  const Tensor attn = rows(attn_out_, mb);
  backend_.paged_attention(q, k_cache_[static_cast<size_t>(layer)].tensor, v_cache_[static_cast<size_t>(layer)].tensor,
                           attn, rows(token_seq_, mb), pos, block_tables_.tensor, attn_shape_);
  const Tensor proj = rows(proj_out_, mb);
  backend_.linear(attn, lw.o_proj.tensor, Tensor{}, proj);
  backend_.add_rms_norm(residual, proj, lw.ffn_norm.tensor, x, eps);

  const Tensor mlp_out = rows(mlp_out_, mb);
  if (marker_) marker_->mark(moe ? Stage::kRouter : Stage::kExperts);
  if (!moe) {  // dense layer: runs here, no experts involved
    backend_.swiglu_mlp(x, lw.dense_gate.tensor, lw.dense_up.tensor, lw.dense_down.tensor, moe_out,
                        mlp_scratch_.tensor);
    return Status::ok();
  }
  const Tensor logits = rows(router_logits_, mb);
  backend_.linear(x, lw.router.tensor, Tensor{}, logits);
  backend_.router_topk(logits, topk_ids, topk_weights, config_.norm_topk_prob);
  backend_.count_experts(topk_ids, count_rows_, expert_counts_.tensor.slice_rows(layer, 1));
  MSI_RETURN_IF_ERROR(link.send(unit, x, topk_ids, topk_weights, flags));
  if (marker_) marker_->mark(Stage::kExperts);
  // While the experts work: the shared expert (Qwen2-MoE), scaled by its sigmoid gate.
  backend_.fill_zero(moe_out);
  if (config_.shared_expert_intermediate_size > 0) {
    backend_.swiglu_mlp(x, lw.shared_gate.tensor, lw.shared_up.tensor, lw.shared_down.tensor, mlp_out,
                        mlp_scratch_.tensor);
    const Tensor gate_logit = rows(shared_gate_logit_, mb);
    backend_.linear(x, lw.shared_expert_gate.tensor, Tensor{}, gate_logit);
    backend_.add_sigmoid_scaled(moe_out, gate_logit, mlp_out);
  }
  return Status::ok();
}

Result<uint32_t> AttentionWorker::layer_combine(int layer, int mb, ExpertLink& link) {
  if (!config_.is_moe_layer(layer)) return 0u;
  return link.receive(UnitId{step_, static_cast<int32_t>(layer), static_cast<int32_t>(mb)}, rows(moe_out_, mb));
}

bool AttentionWorker::compute_logits() {
  if (n_step_tokens_ == 0 || n_logit_rows_ == 0) return false;
  const Tensor residual = residual_.tensor.slice_rows(0, n_step_tokens_);
  if (marker_) marker_->mark(Stage::kOther);
  backend_.add(residual, moe_out_.tensor.slice_rows(0, n_step_tokens_));  // last layer's FFN
  const Tensor final_rows = final_rows_.tensor.slice_rows(0, n_logit_rows_);
  const Tensor final_normed = final_normed_.tensor.slice_rows(0, n_logit_rows_);
  const Tensor logits = logits_.tensor.slice_rows(0, n_logit_rows_);
  backend_.gather_rows(residual, logit_rows_.tensor.slice_rows(0, n_logit_rows_), final_rows);
  backend_.rms_norm(final_rows, w_.final_norm.tensor, final_normed, config_.rms_norm_eps);
  backend_.linear(final_normed, w_.lm_head_tensor(), Tensor{}, logits);
  return true;
}

Status AttentionWorker::finish_step(float* logits_out) {
  if (!compute_logits()) return Status::ok();
  const Tensor logits = logits_.tensor.slice_rows(0, n_real_logit_rows_);
  backend_.copy_to_host(logits_out, logits, logits.nbytes());
  return Status::ok();
}

Status AttentionWorker::finish_step_sample(const float* params, int32_t* ids_out) {
  if (!compute_logits()) return Status::ok();
  const int64_t n = n_real_logit_rows_;
  const Tensor ids = sampled_ids_.tensor.slice_rows(0, n);
  bool greedy = true;
  for (int64_t r = 0; r < n; ++r) greedy = greedy && params[4 * r] == 0.0f;
  if (greedy) {
    backend_.argmax_rows(logits_.tensor.slice_rows(0, n), ids);
  } else {
    const Tensor p = sample_params_.tensor.slice_rows(0, n);
    backend_.copy_from_host(p, params, p.nbytes());
    backend_.sample_rows(logits_.tensor.slice_rows(0, n), p, ids);
  }
  backend_.copy_to_host(ids_out, ids, ids.nbytes());
  return Status::ok();
}

Status AttentionWorker::take_expert_counts(std::vector<int64_t>& out) {
  const Tensor counts = expert_counts_.tensor;  // [n_layers, max(n_experts, 1)]
  backend_.copy_to_host(h_expert_counts_.data(), counts, counts.nbytes());
  backend_.fill_zero(counts);
  const int64_t n_layers = config_.n_layers, n_experts = config_.n_experts;
  out.assign(static_cast<size_t>(n_layers * n_experts), 0);
  for (int64_t l = 0; l < n_layers; ++l) {
    for (int64_t e = 0; e < n_experts; ++e) {
      out[static_cast<size_t>(l * n_experts + e)] = h_expert_counts_[static_cast<size_t>(l * counts.cols() + e)];
    }
  }
  return Status::ok();
}

Status AttentionWorker::add_synthetic_context(int64_t seq_id, int64_t n_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return error(StatusCode::kNotFound, "no sequence {}", seq_id);
  MSI_RETURN_IF_ERROR(reserve(seq_id, it->second.n_tokens + n_tokens));
  it->second.n_tokens += n_tokens;
  return Status::ok();
}

}  // namespace msi

// AttentionWorker: the attention role. Owns its sequences' paged KV cache and all non-expert
// weights. A step is planned once on the host (token layout, positions, KV slots, micro-batch
// split), then driven layer by layer and micro-batch by micro-batch:
//
//   layer_attention(l, i): [l > 0: residual += moe_out] → input norm → QKV (+bias, q/k-norm)
//     → RoPE → KV append → paged attention → O proj → residual += attn → post-attention norm →
//     MoE layer: router → top-k (tallied per expert: take_expert_counts) → link.send; shared
//     expert into moe_out.
//     Dense layer: the MLP into moe_out.
//   layer_combine(l, i): MoE layer: link.receive adds the experts' partial sums into moe_out.
//   finish_step: residual += moe_out → final norm → LM head for the tokens that want logits.
//
// Workspaces are sized at construction from the options (max tokens per step, max sequences,
// KV blocks); nothing is allocated while stepping. Not thread-safe: one thread drives a worker.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "kv/block_pool.h"
#include "model/config.h"
#include "roles/expert_link.h"
#include "roles/stage_marker.h"
#include "roles/weights.h"
#include "sched/scheduler.h"

namespace msi {

struct AttentionWorkerOptions {
  int64_t max_batched_tokens = 8192;  // tokens per step (prefill chunks + decodes)
  int64_t max_seqs = 256;             // sequences per step
  int64_t kv_block_size = 16;
  int64_t kv_n_blocks = 0;            // KV blocks in the pool (required, > 0)
  int64_t max_model_len = 0;          // positions per sequence
  int64_t max_micro_batches = 4;
};

// Part of one sequence processed in a step: `tokens` are appended at positions
// [n_cached, n_cached + tokens.size()).
struct SeqChunk {
  int64_t seq_id = 0;
  std::span<const int32_t> tokens;
  bool want_logits = false;  // produce logits for the last token
};

class AttentionWorker final : public KvSpace {
 public:
  static Result<std::unique_ptr<AttentionWorker>> create(const ModelConfig& config, Backend& backend,
                                                         AttentionWeights weights,
                                                         const AttentionWorkerOptions& options);

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return backend_; }  // the device it runs on (device timelines)
  const BlockPool& block_pool() const { return pool_; }
  int64_t n_cached_tokens(int64_t seq_id) const;

  // KvSpace: registers a new, empty sequence (fails if the id is in use); ensures KV blocks for
  // `n_tokens` tokens in total (ResourceExhausted, taking nothing, if the pool is short); frees
  // the sequence's KV blocks at once.
  Status add_sequence(int64_t seq_id) override;
  Status reserve(int64_t seq_id, int64_t n_tokens) override;
  void free_sequence(int64_t seq_id) override;

  // Plans a step over `chunks` split into `n_micro_batches` micro-batches balanced by tokens.
  // Validates token ids (vocabulary), lengths (max_model_len) and capacity; reserves KV blocks.
  Status begin_step(std::span<const SeqChunk> chunks, int n_micro_batches, int64_t step);
  int n_micro_batches() const { return static_cast<int>(mb_token_begin_.size()) - 1; }
  int64_t micro_batch_tokens(int mb) const { return mb_token_begin_[mb + 1] - mb_token_begin_[mb]; }

  // `flags` go with the unit's dispatch messages (MoE layers).
  Status layer_attention(int layer, int mb, ExpertLink& link, uint32_t flags = 0);
  // Returns the OR of the experts' reply flags (0 for dense layers).
  Result<uint32_t> layer_combine(int layer, int mb, ExpertLink& link);
  // Writes logits [n_wanted, vocab] to the host in chunk order (chunks with want_logits only).
  Status finish_step(float* logits_out);

  // finish_step with sampling on the device: `params` holds (temperature, top_p, top_k, u) per
  // wanted row (Backend::sample_rows; all-zero rows are greedy); writes the tokens to ids_out, in
  // chunk order. Only the ids cross to the host.
  Status finish_step_sample(const float* params, int32_t* ids_out);

  // Benchmarks only: sequence `seq_id` gets KV blocks for `n_tokens` more tokens and counts them
  // as cached without computing them (their K/V are whatever the cache holds), so a decode step
  // at a long context can be measured without its prefill.
  Status add_synthetic_context(int64_t seq_id, int64_t n_tokens);

  // Decode steps as device graphs, one per padded batch size (graph_bucket): a step qualifies when
  // every chunk is one token that wants logits, it has one micro-batch, the link is device-local,
  // no stage marker is set, and the backend records graphs. The step's inputs are copied outside
  // the graph; padding tokens write no KV and their logits are dropped.
  bool graph_eligible(std::span<const SeqChunk> chunks, int n_micro_batches, const ExpertLink& link) const;
  // Runs such a step (capturing its bucket's graph on first use) and ends it like finish_step
  // (logits_out) or finish_step_sample (sample_params, ids_out; sample_params null: greedy).
  // Exactly one of logits_out and ids_out is non-null.
  Status run_decode_graph(std::span<const SeqChunk> chunks, int64_t step, ExpertLink& link, float* logits_out,
                          int32_t* ids_out, const float* sample_params = nullptr);
  int64_t graph_bucket(int64_t n) const;
  size_t n_graphs() const { return graphs_.size(); }

  // The allocations an expert link's messages point into (the normed hidden states, top-k ids and
  // weights of every micro-batch), for sharing with expert workers in other processes.
  std::vector<Tensor> peer_send_buffers() const { return {normed_.tensor, topk_ids_.tensor, topk_weights_.tensor}; }

  // Stage marks for per-stage timings (nullptr: none).
  void set_marker(StageMarker* marker) { marker_ = marker; }

  // Expert-load statistics: every MoE layer counts its routed (token, expert) pairs on the device
  // as it routes them (Backend::count_experts; graph padding excluded). Writes the counts since
  // the previous call into `out`, [n_layers * n_experts] in layer-major order (dense layers:
  // zeros), and restarts them at zero. Blocks for one small device-to-host copy; call between
  // steps. Allocates only when `out` is smaller. NOTE: the device counters are i32: take them
  // before one expert of a layer sees 2^31 pairs (the runner takes them every second).
  Status take_expert_counts(std::vector<int64_t>& out);

 private:
  AttentionWorker(const ModelConfig& config, Backend& backend, AttentionWeights weights,
                  const AttentionWorkerOptions& options);
  Tensor rows(const OwnedTensor& t, int mb) const;
  // begin_step without the embedding; pads the step to `pad_to` tokens (graphs) when > 0.
  Status plan_step(std::span<const SeqChunk> chunks, int n_micro_batches, int64_t step, int64_t pad_to);
  void embed();
  // Final norm and LM head into logits_ rows [0, n_logit_rows_); false when there are none.
  bool compute_logits();

  const ModelConfig& config_;
  Backend& backend_;
  AttentionWeights w_;
  AttentionWorkerOptions opt_;
  BlockPool pool_;
  std::unordered_map<int64_t, BlockTable> seqs_;
  int64_t step_ = 0;
  AttentionShape attn_shape_;

  // KV cache: per layer [n_blocks * block_size, kv_dim].
  std::vector<OwnedTensor> k_cache_, v_cache_;
  // Step inputs planned on the host, [max_batched_tokens] unless noted.
  OwnedTensor token_ids_, positions_, slot_mapping_, token_seq_;
  OwnedTensor block_tables_;  // [max_seqs, max_blocks_per_seq]
  OwnedTensor logit_rows_;    // [max_seqs]
  // Activations, [max_batched_tokens, ·].
  OwnedTensor residual_, normed_, q_, k_, v_, attn_out_, proj_out_, moe_out_;
  OwnedTensor router_logits_, topk_ids_, topk_weights_, shared_gate_logit_, mlp_out_, mlp_scratch_;
  OwnedTensor final_rows_, final_normed_, logits_;  // [max_seqs, ·]
  OwnedTensor sampled_ids_;                         // [max_seqs]
  OwnedTensor sample_params_;                       // [max_seqs, 4] f32
  std::vector<float> h_sample_params_;              // staging, [max_seqs, 4]

  // Host planning buffers (capacity reserved at construction).
  std::vector<int32_t> h_tokens_, h_positions_, h_slots_, h_token_seq_, h_block_tables_, h_logit_rows_;
  std::vector<int64_t> mb_token_begin_;  // [n_mb + 1] token offsets of micro-batches
  int64_t n_step_tokens_ = 0;
  int64_t n_logit_rows_ = 0;
  StageMarker* marker_ = nullptr;
  std::unordered_map<int64_t, std::unique_ptr<DeviceGraph>> graphs_;  // by padded batch size
  int64_t n_real_logit_rows_ = 0;
  OwnedTensor expert_counts_;             // [n_layers, n_experts] i32, since take_expert_counts
  OwnedTensor n_valid_;                   // [1] i32: the real rows of a graph step
  Tensor count_rows_;                     // n_valid_ in graph steps, empty in eager ones
  std::vector<int32_t> h_expert_counts_;  // staging, [n_layers * n_experts]
};

}  // namespace msi

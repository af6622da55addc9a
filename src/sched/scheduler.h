// Scheduler: continuous (iteration-level) batching for one attention worker.
//
// Each step it packs, under a token budget (max_batched_tokens) and a sequence limit (max_seqs):
//   1. the running sequences, oldest first: one decode token each, or the next chunk of a prompt
//      (chunked prefill) — decodes and prefill chunks mix in one step;
//   2. then waiting sequences, first come first served, while KV blocks allow.
// KV blocks are reserved per step through KvSpace; when a running sequence cannot get its block,
// the newest running sequence is preempted (its blocks freed at once, it goes back to the front
// of the queue and later recomputes its prompt and the tokens it generated).
//
// After the step, update() samples each sequence that produced logits, applies the stop rules
// (EOS unless ignore_eos, stop_token_ids, min_tokens, max_tokens, max model length) and reports
// the new tokens. abort() removes a request and frees its blocks at once (client disconnect, stop
// string). Not thread-safe: owned by the attention worker's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "sched/sampling.h"

namespace msi {

// What the scheduler needs of the KV cache (implemented by the attention worker).
class KvSpace {
 public:
  virtual ~KvSpace() = default;
  virtual Status add_sequence(int64_t seq_id) = 0;
  // Ensures blocks for n_tokens tokens in total; ResourceExhausted (taking nothing) if short.
  virtual Status reserve(int64_t seq_id, int64_t n_tokens) = 0;
  virtual void free_sequence(int64_t seq_id) = 0;
};

struct SchedulerConfig {
  int64_t max_batched_tokens = 8192;
  int64_t max_seqs = 256;
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  std::vector<int64_t> eos_token_ids;
};

struct SchedRequest {
  int64_t id = 0;  // unique per scheduler
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;
  int64_t min_tokens = 0;
  bool return_logits = false;
  int64_t n_logprobs = -1;     // ≥ 0: report the chosen token's logprob and this many top ones
  uint64_t fallback_seed = 0;  // the generator's seed when sampling.has_seed is false
};

// One sequence's part of a step: tokens [n_computed, n_computed + n) of prompt ++ outputs.
struct ScheduledChunk {
  int64_t id = 0;
  std::span<const int32_t> tokens;
  bool want_logits = false;  // the chunk ends at the sequence's newest token
};

struct SeqOutput {
  int64_t id = 0;
  int32_t token = -1;          // the new token (-1 when the request ended without one)
  bool finished = false;
  std::string finish_reason;   // "stop" | "length" | "abort" when finished
  std::vector<float> logits;   // with return_logits: the vector `token` was chosen from
  // With n_logprobs ≥ 0: log-softmax of the model's logits (before temperature, top-k/p) at the
  // chosen token, and the n_logprobs most likely (token, logprob), most likely first.
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// Fills out.logprob and out.top_logprobs from a logits row (see SeqOutput).
void compute_logprobs(std::span<const float> logits, int32_t token, int64_t n_top, SeqOutput& out);

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvSpace& kv);
  ~Scheduler();

  // Queues a request. InvalidArgument for a duplicate id or an empty prompt.
  Status add(SchedRequest request);
  // Removes a request wherever it is and frees its KV blocks now. False if unknown.
  bool abort(int64_t id);

  // The next step's chunks (empty: nothing to do). Valid until the next schedule()/update().
  Result<std::vector<ScheduledChunk>> schedule();
  // After the step ran: `logits` holds one row [vocab] per chunk with want_logits, in order.
  // Samples, applies the stop rules, frees finished sequences, and appends their outputs.
  void update(std::span<const float> logits, std::vector<SeqOutput>& outputs);
  // When no sequence of the last schedule() needs its logits row on the host (no logits or
  // logprobs returned, min_tokens already met), the step's tokens can be sampled on the device:
  // returns true and fills `params` with one (temperature, top_p, top_k, u) row per chunk with
  // want_logits (Backend::sample_rows), drawing u from each non-greedy request's generator. Else
  // false, drawing nothing.
  bool device_sampling_params(std::vector<float>& params);
  // update() with the tokens already chosen: `tokens` holds one per chunk with want_logits.
  void update_tokens(std::span<const int32_t> tokens, std::vector<SeqOutput>& outputs);

  int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int64_t n_preemptions() const { return n_preemptions_; }

 private:
  struct Seq;
  void preempt(Seq* seq);
  bool is_stop_token(const Seq& seq, int32_t token) const;
  // Appends `token` to the chunk-c sequence and applies the stop rules; `raw` is its logits row
  // (empty with update_tokens).
  void accept(size_t c, Seq* s, int32_t token, std::span<const float> raw, std::vector<SeqOutput>& outputs);

  SchedulerConfig config_;
  KvSpace& kv_;
  std::unordered_map<int64_t, std::unique_ptr<Seq>> seqs_;
  std::deque<Seq*> waiting_;
  std::vector<Seq*> running_;  // admission order
  std::vector<Seq*> step_seqs_;  // the sequences of the last schedule(), chunk order
  std::vector<int64_t> step_n_;
  std::vector<uint8_t> step_want_logits_;
  std::vector<float> masked_;    // scratch row for min_tokens masking
  int64_t n_preemptions_ = 0;
};

}  // namespace msi

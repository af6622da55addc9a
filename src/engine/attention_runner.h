// AttentionRunner: one attention worker's generation loop. Its Scheduler batches the requests
// (continuous batching: prefill chunks and decodes under the token budget, admission by KV
// capacity, preemption), each step runs through the ping-pong pipeline, and the scheduler samples
// and applies the stop rules.
//
// The ping-pong order within a step, for micro-batches i = 0..m-1 and layers l = 0..L-1:
//   for l: for i: [l > 0: combine(l-1, i)] → attention(l, i) → dispatch(l, i)
//   then combine(L-1, i) for every i → final norm, LM head, sampling.
// So while the experts work on (l, i), this worker computes attention for (l, i+1), ...
//
// The attention workers of a deployment run the same steps in lockstep (the experts need all M
// messages of a unit). A worker without work steps with empty batches, flagging the first unit of
// the step idle; when every worker is idle the experts answer kFlagAllIdle and each worker sleeps
// until an event arrives (the frontend wakes every worker whenever it adds a request). After a
// shutdown event a worker finishes its requests, then flags its idle steps shut down; when all
// have, the experts answer kFlagStop and the runners return.
//
// With a timeline, the runner records host spans (planning, attention, waits, logits) and device
// spans (roles/device_timeline.h) of every unit with tokens: when the device ran its attention
// (SpanKind::kAttention; kAttentionExperts with colocated experts, which run inline), when it
// waited for and added the experts' partial sums (kWaitCombine; kCombine with colocated experts),
// and the final norm, LM head and sampling (kLogits). A decode step replayed as a device graph has
// no per-unit marks: it is one span, kGraphStep, on both tracks (--enforce-eager gives per-unit
// device spans). Device spans are resolved into the timeline after steps that read their results
// back (so resolving never waits) and when serve() returns OK.
// One thread drives a runner; it constructs the runner too (the device timeline's anchor waits
// for the worker's stream).
#pragma once

#include <memory>
#include <vector>

#include "engine/worker_channel.h"
#include "pipeline/timeline.h"
#include "roles/attention_worker.h"
#include "roles/device_timeline.h"
#include "roles/expert_link.h"

namespace msi {

struct RunnerOptions {
  int n_micro_batches = 1;
  int64_t max_batched_tokens = 8192;
  int64_t max_seqs = 256;
  int64_t max_model_len = 0;
  uint64_t seed = 0;  // generator seed for requests without their own
  bool use_graphs = true;  // replay eligible decode steps as device graphs (AttentionWorker)
};

class AttentionRunner {
 public:
  AttentionRunner(const ModelConfig& config, AttentionWorker& worker, ExpertLink& link,
                  const RunnerOptions& options, Timeline* timeline);

  // Serves events from `inbox` and reports to `outbox` until the deployment stops (OK) or fails.
  // Requests must have passed validation (prompt length, vocabulary) by the frontend.
  Status serve(WorkerInbox& inbox, WorkerOutbox& outbox);

 private:
  // One step over `chunks`. An empty step sends `probe_flags` (kFlagIdle, kFlagShutdown) with its
  // first unit and returns the experts' reply flags in *reply (ending the step early when every
  // attention worker is idle).
  // With `device_sampling` the step ends with tokens sampled on the device (params_) in ids_
  // instead of logits in logits_.
  Status run_step(std::span<const SeqChunk> chunks, int64_t step, uint32_t probe_flags, uint32_t* reply,
                  bool device_sampling);
  // A device span of a unit with work (none without a device timeline or without tokens).
  DeviceTimeline::Span device_begin(SpanKind kind, const UnitId& unit, int64_t n_tokens);
  void device_end(DeviceTimeline::Span span);

  const ModelConfig& config_;
  AttentionWorker& worker_;
  ExpertLink& link_;
  RunnerOptions options_;
  Timeline* timeline_;
  std::unique_ptr<DeviceTimeline> device_;  // with a timeline
  SpanKind device_attention_kind_ = SpanKind::kAttention;
  SpanKind device_combine_kind_ = SpanKind::kWaitCombine;
  int first_moe_layer_ = -1;
  bool after_idle_step_ = false;  // the last step ended with every worker idle
  std::vector<float> logits_;  // [max_seqs, vocab]
  std::vector<int32_t> ids_;   // [max_seqs]
  std::vector<float> params_;  // [max_seqs, 4] device sampling parameters
};

}  // namespace msi

// ExpertWorker: the expert role. Owns a subset of the routed experts of every MoE layer; stateless
// between steps. For one unit it takes the dispatch messages of all M attention workers, groups
// their tokens by local expert (one batched SwiGLU MLP per expert over the tokens of every
// source), weights each output by its gate, and sums per token over its local experts.
//
// Workspace is sized at construction for `max_rows` tokens per unit (all sources together);
// process() never allocates. Not thread-safe: one thread drives a worker.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "roles/moe_message.h"
#include "roles/weights.h"

namespace msi {

class ExpertWorker {
 public:
  ExpertWorker(const ModelConfig& config, Backend& backend, ExpertWeights weights, int64_t max_rows);

  const std::vector<int32_t>& experts() const { return weights_.experts; }
  int64_t max_rows() const { return max_rows_; }

  // Requires: `layer` is a MoE layer; in.size() == out.size(); sum of in[i].n_tokens ≤ max_rows.
  // Guarantees: out[i].n_tokens == in[i].n_tokens and out[i].partial rows hold the sums.
  // Returns InvalidArgument on a local expert id out of range or too many rows.
  Status process(int layer, std::span<const DispatchMessage> in, std::span<CombineMessage> out);

 private:
  const ModelConfig& config_;
  Backend& backend_;
  ExpertWeights weights_;
  int64_t max_rows_;
  OwnedTensor x_all_;     // [max_rows, hidden] inputs of all sources, concatenated
  OwnedTensor y_all_;     // [max_rows, hidden] summed outputs
  OwnedTensor x_expert_;  // [max_rows, hidden] one expert's gathered inputs
  OwnedTensor y_expert_;  // [max_rows, hidden]
  OwnedTensor scratch_;   // [2 * max_rows * moe_inter]
  OwnedTensor rows_;      // [max_rows] int32 row indices for gather/scatter
  OwnedTensor scale_;     // [max_rows] f32 gate weights
  std::vector<std::vector<int32_t>> expert_rows_;  // [n_local] rows routed to it (host planning)
  std::vector<std::vector<float>> expert_gates_;
};

}  // namespace msi

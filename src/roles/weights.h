// The weights each role owns, loaded from a TensorSource through the model's tensor specs:
// AttentionWeights (embedding, attention, norms, router, shared expert, dense MLPs, LM head) for
// attention workers; ExpertWeights (a subset of the routed experts of every MoE layer) for
// expert workers. A role loads only the tensors it owns.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/arch.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace msi {

struct AttentionLayerWeights {
  OwnedTensor attn_norm, q_proj, k_proj, v_proj, o_proj;
  OwnedTensor q_bias, k_bias, v_bias;  // empty unless attention_bias
  OwnedTensor q_norm, k_norm;          // empty unless qk_norm
  OwnedTensor ffn_norm;
  OwnedTensor router;                  // MoE layers
  OwnedTensor shared_gate, shared_up, shared_down, shared_expert_gate;  // shared expert, if any
  OwnedTensor dense_gate, dense_up, dense_down;                         // dense layers
};

struct AttentionWeights {
  OwnedTensor embed;
  OwnedTensor final_norm;
  OwnedTensor lm_head;  // empty when tied: use embed
  std::vector<AttentionLayerWeights> layers;
  const Tensor& lm_head_tensor() const { return lm_head.empty() ? embed.tensor : lm_head.tensor; }
};

struct ExpertFfnWeights {
  OwnedTensor gate, up, down;  // [inter, hidden], [inter, hidden], [hidden, inter]
};

struct ExpertWeights {
  std::vector<int32_t> experts;  // global ids, in local-index order
  // layers[l][local]: empty for dense layers.
  std::vector<std::vector<ExpertFfnWeights>> layers;
};

// A worker's routed experts of one MoE layer stacked for the grouped ops (Backend::moe_*): slot s
// is experts[s]. Empty tensors for dense layers.
struct StackedExpertLayer {
  OwnedTensor w13;  // [n_local, 2 * inter, hidden]: gate rows, then up rows, per expert
  OwnedTensor w2;   // [n_local, hidden, inter]
};

struct StackedExpertWeights {
  std::vector<int32_t> experts;  // global ids, in slot order
  std::vector<StackedExpertLayer> layers;
};

// Weights a source generates (dummy) are generated on the backend's device, not uploaded.
Result<AttentionWeights> load_attention_weights(const ModelConfig& config, const TensorSource& source,
                                                Backend& backend);
Result<ExpertWeights> load_expert_weights(const ModelConfig& config, const TensorSource& source,
                                          Backend& backend, const std::vector<int32_t>& experts);
Result<StackedExpertWeights> load_stacked_expert_weights(const ModelConfig& config, const TensorSource& source,
                                                         Backend& backend, const std::vector<int32_t>& experts);

}  // namespace msi

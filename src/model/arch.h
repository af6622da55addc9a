// Per-architecture tensor naming: every weight of a model as (HF name, shape, semantic kind,
// layer, expert). One file per architecture (model/arch/<family>.cc) implements it; loading,
// dummy weights and the checkpoint writer all go through this list, so a name lives in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace msi {

enum class WeightKind {
  kEmbed,          // [vocab, hidden]
  kFinalNorm,      // [hidden]
  kLmHead,         // [vocab, hidden] (absent when tie_word_embeddings: use kEmbed)
  kAttnNorm,       // [hidden]
  kQProj,          // [n_heads*head_dim, hidden]
  kKProj,          // [n_kv_heads*head_dim, hidden]
  kVProj,          // [n_kv_heads*head_dim, hidden]
  kOProj,          // [hidden, n_heads*head_dim]
  kQBias,          // [n_heads*head_dim]
  kKBias,          // [n_kv_heads*head_dim]
  kVBias,          // [n_kv_heads*head_dim]
  kQNorm,          // [head_dim]
  kKNorm,          // [head_dim]
  kFfnNorm,        // [hidden] (post_attention_layernorm)
  kRouter,         // [n_experts, hidden]
  kExpertGate,     // [moe_inter, hidden]
  kExpertUp,       // [moe_inter, hidden]
  kExpertDown,     // [hidden, moe_inter]
  kSharedGate,     // [shared_inter, hidden]
  kSharedUp,       // [shared_inter, hidden]
  kSharedDown,     // [hidden, shared_inter]
  kSharedExpertGate,  // [1, hidden]
  kDenseGate,      // [intermediate, hidden]
  kDenseUp,        // [intermediate, hidden]
  kDenseDown,      // [hidden, intermediate]
};

// True for the routed-expert weights (owned by expert workers); everything else belongs to
// attention workers.
inline bool is_expert_weight(WeightKind kind) {
  return kind == WeightKind::kExpertGate || kind == WeightKind::kExpertUp ||
         kind == WeightKind::kExpertDown;
}

struct TensorSpec {
  std::string name;            // Hugging Face name, e.g. "model.layers.3.mlp.experts.7.up_proj.weight"
  std::vector<int64_t> shape;  // as stored in the checkpoint
  WeightKind kind;
  int layer = -1;   // -1 for embed, final norm, lm head
  int expert = -1;  // routed expert index, else -1
};

// Every tensor of the model described by `config`, in a stable order.
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config);

// Fetches spec.name from `source` and checks it against the spec: InvalidArgument
// "tensor 'NAME' has shape [a, b], expected [c, d]" on a shape mismatch, Unimplemented if its
// dtype is not F32, F16 or BF16. The view lives as long as `source`.
Result<HostTensorView> load_tensor(const TensorSource& source, const TensorSpec& spec);

}  // namespace msi

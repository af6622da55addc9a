#include "roles/weights.h"

#include <unordered_map>

namespace msi {
namespace {

OwnedTensor* attention_slot(AttentionWeights& w, const TensorSpec& s) {
  if (s.layer < 0) {
    switch (s.kind) {
      case WeightKind::kEmbed: return &w.embed;
      case WeightKind::kFinalNorm: return &w.final_norm;
      case WeightKind::kLmHead: return &w.lm_head;
      default: return nullptr;
    }
  }
  AttentionLayerWeights& l = w.layers[static_cast<size_t>(s.layer)];
  switch (s.kind) {
    case WeightKind::kAttnNorm: return &l.attn_norm;
    case WeightKind::kQProj: return &l.q_proj;
    case WeightKind::kKProj: return &l.k_proj;
    case WeightKind::kVProj: return &l.v_proj;
    case WeightKind::kOProj: return &l.o_proj;
    case WeightKind::kQBias: return &l.q_bias;
    case WeightKind::kKBias: return &l.k_bias;
    case WeightKind::kVBias: return &l.v_bias;
    case WeightKind::kQNorm: return &l.q_norm;
    case WeightKind::kKNorm: return &l.k_norm;
    case WeightKind::kFfnNorm: return &l.ffn_norm;
    case WeightKind::kRouter: return &l.router;
    case WeightKind::kSharedGate: return &l.shared_gate;
    case WeightKind::kSharedUp: return &l.shared_up;
    case WeightKind::kSharedDown: return &l.shared_down;
    case WeightKind::kSharedExpertGate: return &l.shared_expert_gate;
    case WeightKind::kDenseGate: return &l.dense_gate;
    case WeightKind::kDenseUp: return &l.dense_up;
    case WeightKind::kDenseDown: return &l.dense_down;
    default: return nullptr;
  }
}

}  // namespace

Result<AttentionWeights> load_attention_weights(const ModelConfig& config, const TensorSource& source,
                                                Backend& backend) {
  AttentionWeights w;
  w.layers.resize(static_cast<size_t>(config.n_layers));
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    if (is_expert_weight(spec.kind)) continue;
    OwnedTensor* slot = attention_slot(w, spec);
    MSI_CHECK(slot != nullptr, "no slot for tensor {}", spec.name);
    MSI_ASSIGN_OR_RETURN(HostTensorView host, load_tensor(source, spec));
    *slot = backend.upload_weight(host);
    source.release(spec.name);
  }
  return w;
}

Result<ExpertWeights> load_expert_weights(const ModelConfig& config, const TensorSource& source,
                                          Backend& backend, const std::vector<int32_t>& experts) {
  ExpertWeights w;
  w.experts = experts;
  w.layers.resize(static_cast<size_t>(config.n_layers));
  std::unordered_map<int32_t, size_t> local;
  for (size_t j = 0; j < experts.size(); ++j) local[experts[j]] = j;
  for (int64_t l = 0; l < config.n_layers; ++l) {
    if (config.is_moe_layer(l)) w.layers[static_cast<size_t>(l)].resize(experts.size());
  }
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    if (!is_expert_weight(spec.kind)) continue;
    auto it = local.find(spec.expert);
    if (it == local.end()) continue;  // another worker's expert: never read
    ExpertFfnWeights& e = w.layers[static_cast<size_t>(spec.layer)][it->second];
    MSI_ASSIGN_OR_RETURN(HostTensorView host, load_tensor(source, spec));
    OwnedTensor t = backend.upload_weight(host);
    source.release(spec.name);
    if (spec.kind == WeightKind::kExpertGate) e.gate = std::move(t);
    else if (spec.kind == WeightKind::kExpertUp) e.up = std::move(t);
    else e.down = std::move(t);
  }
  return w;
}

}  // namespace msi

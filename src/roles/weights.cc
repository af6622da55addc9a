#include "roles/weights.h"

#include <optional>
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

OwnedTensor alloc_like(Backend& backend, const TensorSpec& spec) {
  MSI_CHECK(spec.shape.size() == 1 || spec.shape.size() == 2, "weights are 1-D or 2-D: {}", spec.name);
  return spec.shape.size() == 1 ? backend.alloc(backend.compute_dtype(), {spec.shape[0]})
                                : backend.alloc(backend.compute_dtype(), {spec.shape[0], spec.shape[1]});
}

// Fills `dst` (spec's element count) from the source: generated on the device when the source
// generates, else read and uploaded.
Status load_into(const TensorSource& source, const TensorSpec& spec, Backend& backend, const Tensor& dst) {
  if (std::optional<GeneratedTensor> g = source.generated(spec.name)) {
    backend.fill_dummy(dst, g->stream, g->center, g->half_width);
    return Status::ok();
  }
  MSI_ASSIGN_OR_RETURN(HostTensorView host, load_tensor(source, spec));
  backend.upload_weight_into(dst, host);
  source.release(spec.name);
  return Status::ok();
}

Result<OwnedTensor> load_weight(const TensorSource& source, const TensorSpec& spec, Backend& backend) {
  OwnedTensor t = alloc_like(backend, spec);
  MSI_RETURN_IF_ERROR(load_into(source, spec, backend, t.tensor));
  return t;
}

}  // namespace

Result<StackedExpertWeights> load_stacked_expert_weights(const ModelConfig& config, const TensorSource& source,
                                                         Backend& backend, const std::vector<int32_t>& experts) {
  StackedExpertWeights w;
  w.experts = experts;
  w.layers.resize(static_cast<size_t>(config.n_layers));
  std::unordered_map<int32_t, int64_t> slot;
  for (size_t j = 0; j < experts.size(); ++j) slot[experts[j]] = static_cast<int64_t>(j);
  const auto e = static_cast<int64_t>(experts.size());
  const int64_t h = config.hidden_size, inter = config.moe_intermediate_size;
  for (int64_t l = 0; l < config.n_layers; ++l) {
    if (!config.is_moe_layer(l) || e == 0) continue;
    StackedExpertLayer& layer = w.layers[static_cast<size_t>(l)];
    layer.w13 = backend.alloc(backend.compute_dtype(), {e, 2 * inter, h});
    layer.w2 = backend.alloc(backend.compute_dtype(), {e, h, inter});
  }
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    if (!is_expert_weight(spec.kind)) continue;
    auto it = slot.find(spec.expert);
    if (it == slot.end()) continue;  // another worker's expert: never read
    StackedExpertLayer& layer = w.layers[static_cast<size_t>(spec.layer)];
    const int64_t s = it->second;
    Tensor dst;
    if (spec.kind == WeightKind::kExpertGate) {
      dst = layer.w13.tensor.reshape({e * 2 * inter, h}).slice_rows((2 * s) * inter, inter);
    } else if (spec.kind == WeightKind::kExpertUp) {
      dst = layer.w13.tensor.reshape({e * 2 * inter, h}).slice_rows((2 * s + 1) * inter, inter);
    } else {
      dst = layer.w2.tensor.reshape({e * h, inter}).slice_rows(s * h, h);
    }
    MSI_RETURN_IF_ERROR(load_into(source, spec, backend, dst));
  }
  return w;
}

Result<AttentionWeights> load_attention_weights(const ModelConfig& config, const TensorSource& source,
                                                Backend& backend) {
  AttentionWeights w;
  w.layers.resize(static_cast<size_t>(config.n_layers));
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    if (is_expert_weight(spec.kind)) continue;
    OwnedTensor* slot = attention_slot(w, spec);
    MSI_CHECK(slot != nullptr, "no slot for tensor {}", spec.name);
    MSI_ASSIGN_OR_RETURN(*slot, load_weight(source, spec, backend));
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
    MSI_ASSIGN_OR_RETURN(OwnedTensor t, load_weight(source, spec, backend));
    if (spec.kind == WeightKind::kExpertGate) e.gate = std::move(t);
    else if (spec.kind == WeightKind::kExpertUp) e.up = std::move(t);
    else e.down = std::move(t);
  }
  return w;
}

}  // namespace msi

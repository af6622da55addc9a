// Mixtral (model_type "mixtral"): every layer is MoE, experts named w1 (gate), w3 (up) and
// w2 (down) under block_sparse_moe; the router always renormalizes its top-k weights.
#include <fmt/format.h>

#include "model/arch/arch_internal.h"

namespace msi {

namespace {

Status parse_mixtral_config(const JsonFields& f, ModelConfig* c) {
  MSI_ASSIGN_OR_RETURN(c->intermediate_size, f.get_int("intermediate_size"));
  // NOTE: Mixtral has no dense layers; its intermediate_size is the expert width.
  c->moe_intermediate_size = c->intermediate_size;
  c->norm_topk_prob = true;
  c->attention_bias = false;
  c->qk_norm = false;
  c->shared_expert_intermediate_size = 0;
  c->layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c->n_layers, 0)), true);
  return Status::ok();
}

std::vector<TensorSpec> mixtral_tensor_specs(const ModelConfig& c) {
  constexpr MlpNames kExpertNames{"w1", "w3", "w2"};
  constexpr MlpKinds kExpertKinds{WeightKind::kExpertGate, WeightKind::kExpertUp,
                                  WeightKind::kExpertDown};
  std::vector<TensorSpec> specs;
  add_embedding_specs(c, &specs);
  for (int layer = 0; layer < c.n_layers; ++layer) {
    add_attention_specs(c, layer, &specs);
    const std::string p = layer_prefix(layer) + "block_sparse_moe.";
    add_spec(&specs, p + "gate.weight", {c.n_experts, c.hidden_size}, WeightKind::kRouter, layer);
    for (int e = 0; e < c.n_experts; ++e) {
      add_mlp_specs(&specs, fmt::format("{}experts.{}.", p, e), kExpertNames, kExpertKinds,
                    c.hidden_size, c.moe_intermediate_size, layer, e);
    }
  }
  add_output_specs(c, &specs);
  return specs;
}

}  // namespace

const ArchOps kMixtralOps{
    .arch = ModelArch::kMixtral,
    .model_type = "mixtral",
    .default_rms_norm_eps = 1e-5f,
    .default_rope_theta = 1e6,
    .default_max_position_embeddings = 4096 * 32,
    .parse_config = parse_mixtral_config,
    .tensor_specs = mixtral_tensor_specs,
};

}  // namespace msi

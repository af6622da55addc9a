// Qwen2-MoE (model_type "qwen2_moe"): biases on q/k/v, routed experts under mlp.experts with
// optional dense layers, and on MoE layers a shared expert scaled by
// sigmoid(shared_expert_gate · x).
#include "model/arch/arch_internal.h"

namespace msi {

namespace {

Status parse_qwen2_moe_config(const JsonFields& f, ModelConfig* c) {
  MSI_ASSIGN_OR_RETURN(c->moe_intermediate_size, f.get_int("moe_intermediate_size"));
  MSI_ASSIGN_OR_RETURN(c->intermediate_size, f.get_int("intermediate_size", 0));
  MSI_ASSIGN_OR_RETURN(c->shared_expert_intermediate_size,
                       f.get_int("shared_expert_intermediate_size", 0));
  if (c->shared_expert_intermediate_size < 0) {
    return error(StatusCode::kInvalidArgument,
                 "config.json field 'shared_expert_intermediate_size' must not be negative, got {}",
                 c->shared_expert_intermediate_size);
  }
  MSI_ASSIGN_OR_RETURN(c->norm_topk_prob, f.get_bool("norm_topk_prob", false));
  MSI_ASSIGN_OR_RETURN(c->attention_bias, f.get_bool("qkv_bias", true));
  c->qk_norm = false;
  return parse_qwen_moe_layers(f, c);
}

std::vector<TensorSpec> qwen2_moe_tensor_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  add_embedding_specs(c, &specs);
  for (int layer = 0; layer < c.n_layers; ++layer) {
    add_attention_specs(c, layer, &specs);
    add_qwen_mlp_specs(c, layer, &specs);
    if (c.is_moe_layer(layer) && c.shared_expert_intermediate_size > 0) {
      const std::string p = layer_prefix(layer) + "mlp.";
      add_mlp_specs(&specs, p + "shared_expert.", kProjMlpNames,
                    {WeightKind::kSharedGate, WeightKind::kSharedUp, WeightKind::kSharedDown},
                    c.hidden_size, c.shared_expert_intermediate_size, layer);
      add_spec(&specs, p + "shared_expert_gate.weight", {1, c.hidden_size},
               WeightKind::kSharedExpertGate, layer);
    }
  }
  add_output_specs(c, &specs);
  return specs;
}

}  // namespace

const ArchOps kQwen2MoeOps{
    .arch = ModelArch::kQwen2Moe,
    .model_type = "qwen2_moe",
    .default_rms_norm_eps = 1e-6f,
    .default_rope_theta = 10000.0,
    .default_max_position_embeddings = 32768,
    .parse_config = parse_qwen2_moe_config,
    .tensor_specs = qwen2_moe_tensor_specs,
};

}  // namespace msi

// Qwen3-MoE (model_type "qwen3_moe"): per-head RMSNorm on q and k, routed experts under
// mlp.experts with optional dense layers (mlp_only_layers, decoder_sparse_step), no shared
// expert.
#include "model/arch/arch_internal.h"

namespace msi {

namespace {

Status parse_qwen3_moe_config(const JsonFields& f, ModelConfig* c) {
  MSI_ASSIGN_OR_RETURN(c->moe_intermediate_size, f.get_int("moe_intermediate_size"));
  MSI_ASSIGN_OR_RETURN(c->intermediate_size, f.get_int("intermediate_size", 0));
  MSI_ASSIGN_OR_RETURN(c->norm_topk_prob, f.get_bool("norm_topk_prob", false));
  MSI_ASSIGN_OR_RETURN(c->attention_bias, f.get_bool("attention_bias", false));
  if (c->attention_bias) {
    // HF's Qwen3-MoE then also puts a bias on o_proj, which no WeightKind describes yet.
    return error(StatusCode::kUnimplemented,
                 "qwen3_moe with attention_bias=true (biases on q/k/v/o) is not implemented");
  }
  c->qk_norm = true;
  c->shared_expert_intermediate_size = 0;
  return parse_qwen_moe_layers(f, c);
}

std::vector<TensorSpec> qwen3_moe_tensor_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  add_embedding_specs(c, &specs);
  for (int layer = 0; layer < c.n_layers; ++layer) {
    add_attention_specs(c, layer, &specs);
    add_qwen_mlp_specs(c, layer, &specs);
  }
  add_output_specs(c, &specs);
  return specs;
}

}  // namespace

const ArchOps kQwen3MoeOps{
    .arch = ModelArch::kQwen3Moe,
    .model_type = "qwen3_moe",
    .default_rms_norm_eps = 1e-6f,
    .default_rope_theta = 10000.0,
    .default_max_position_embeddings = 32768,
    .parse_config = parse_qwen3_moe_config,
    .tensor_specs = qwen3_moe_tensor_specs,
};

}  // namespace msi

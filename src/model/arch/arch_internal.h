// What each architecture file (model/arch/<family>.cc) provides, and the building blocks they
// share: the registry of supported model_types, the common tensor-spec pieces and the Qwen MoE
// layer layout. Internal to the model module; everything here is stateless.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/arch.h"
#include "model/config.h"
#include "model/json_fields.h"

namespace msi {

struct ArchOps {
  ModelArch arch;
  const char* model_type;  // config.json spelling
  // Hugging Face defaults for fields a config.json may leave out.
  float default_rms_norm_eps;
  double default_rope_theta;
  int64_t default_max_position_embeddings;
  // Reads the family's own fields (MLP layout, biases, norms, router options) after the common
  // ones are set in *config.
  Status (*parse_config)(const JsonFields& fields, ModelConfig* config);
  std::vector<TensorSpec> (*tensor_specs)(const ModelConfig& config);
};

extern const ArchOps kMixtralOps;
extern const ArchOps kQwen2MoeOps;
extern const ArchOps kQwen3MoeOps;

// nullptr when the model_type is not supported.
const ArchOps* find_arch_ops(std::string_view model_type);
const ArchOps& arch_ops(ModelArch arch);
// "mixtral, qwen2_moe, qwen3_moe"
std::string supported_model_types();

// --- Tensor-spec building blocks (model/arch.cc) ---

// "model.layers.3."
std::string layer_prefix(int layer);
void add_spec(std::vector<TensorSpec>* specs, std::string name, std::vector<int64_t> shape,
              WeightKind kind, int layer = -1, int expert = -1);
// model.embed_tokens.weight
void add_embedding_specs(const ModelConfig& config, std::vector<TensorSpec>* specs);
// input_layernorm, self_attn.{q,k,v,o}_proj (+ q/k/v biases when config.attention_bias,
// + q_norm/k_norm when config.qk_norm), post_attention_layernorm.
void add_attention_specs(const ModelConfig& config, int layer, std::vector<TensorSpec>* specs);
// model.norm.weight, and lm_head.weight unless tie_word_embeddings.
void add_output_specs(const ModelConfig& config, std::vector<TensorSpec>* specs);

// A SwiGLU MLP's three projections: PREFIX<gate|up|down>.weight, [inter, hidden] x2 and
// [hidden, inter].
struct MlpNames {
  const char* gate;
  const char* up;
  const char* down;
};
struct MlpKinds {
  WeightKind gate;
  WeightKind up;
  WeightKind down;
};
inline constexpr MlpNames kProjMlpNames{"gate_proj", "up_proj", "down_proj"};
void add_mlp_specs(std::vector<TensorSpec>* specs, const std::string& prefix, MlpNames names,
                   MlpKinds kinds, int64_t hidden, int64_t inter, int layer, int expert = -1);

// --- Qwen MoE family (shared by qwen2_moe and qwen3_moe) ---

// Layer l is MoE iff l is not in mlp_only_layers, num_experts > 0 and
// (l + 1) % decoder_sparse_step == 0. Fills config->layer_is_moe.
Status parse_qwen_moe_layers(const JsonFields& fields, ModelConfig* config);
// MoE layers: mlp.gate + mlp.experts.E.{gate,up,down}_proj; dense layers: mlp.{gate,up,down}_proj.
void add_qwen_mlp_specs(const ModelConfig& config, int layer, std::vector<TensorSpec>* specs);

}  // namespace msi

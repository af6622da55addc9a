// ModelConfig: the architecture hyper-parameters of one Hugging Face MoE model, parsed from its
// config.json (transformers-4 and -5 spellings) and generation_config.json.
//
// Owns nothing but values; thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/status.h"

namespace msi {

enum class ModelArch { kMixtral, kQwen2Moe, kQwen3Moe };

// "mixtral", "qwen2_moe", "qwen3_moe"
const char* model_arch_name(ModelArch arch);

struct ModelConfig {
  ModelArch arch = ModelArch::kMixtral;
  std::string model_type;  // as written in config.json

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // given, or hidden_size / n_heads
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;  // only the "default" rope type is implemented
  int64_t max_position_embeddings = 0;

  // Dense MLP width (dense layers; Mixtral has none).
  int64_t intermediate_size = 0;
  // Routed experts.
  int64_t n_experts = 0;
  int64_t n_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = true;  // renormalize the top-k gate weights to sum to 1
  // Qwen2-MoE shared expert (0 = none), scaled by sigmoid(shared_expert_gate · x).
  int64_t shared_expert_intermediate_size = 0;

  bool attention_bias = false;  // bias on q/k/v projections (Qwen2-MoE)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3-MoE)
  bool tie_word_embeddings = false;

  // layer_is_moe[l]: layer l has routed experts; otherwise it has a dense MLP.
  std::vector<bool> layer_is_moe;

  DType dtype = DType::kBF16;  // checkpoint dtype (torch_dtype / dtype)

  int64_t bos_token_id = -1;          // -1: none
  std::vector<int64_t> eos_token_ids;  // union of config.json and generation_config.json

  bool is_moe_layer(int64_t layer) const { return layer_is_moe.at(static_cast<size_t>(layer)); }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// Parses a config.json object. Fails with a clear message on a missing or unknown model_type,
// missing or invalid fields, or an unsupported rope scaling type (naming it).
Result<ModelConfig> parse_model_config(const nlohmann::json& config);

// Reads DIR/config.json (and DIR/generation_config.json when present, for extra EOS ids).
// `overrides` (may be null) is merged over config.json before parsing (vLLM's --hf-overrides).
Result<ModelConfig> load_model_config(const std::filesystem::path& model_dir,
                                      const nlohmann::json* overrides = nullptr);

// Reads and parses a JSON file; errors name the file (and the parse position).
Result<nlohmann::json> read_json_file(const std::filesystem::path& path);

}  // namespace msi

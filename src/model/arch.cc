// Architecture registry, the shared tensor-spec building blocks and load_tensor.
#include "model/arch.h"

#include <fmt/ranges.h>

#include "core/check.h"
#include "model/arch/arch_internal.h"

namespace msi {

namespace {
// NOTE: constant-initialized (addresses of constant-initialized objects), so it is safe to
// use from other translation units' static initializers.
constexpr const ArchOps* kAllArchs[] = {&kMixtralOps, &kQwen2MoeOps, &kQwen3MoeOps};
}  // namespace

const ArchOps* find_arch_ops(std::string_view model_type) {
  for (const ArchOps* ops : kAllArchs) {
    if (model_type == ops->model_type) return ops;
  }
  return nullptr;
}

const ArchOps& arch_ops(ModelArch arch) {
  for (const ArchOps* ops : kAllArchs) {
    if (ops->arch == arch) return *ops;
  }
  MSI_CHECK(false, "unregistered ModelArch {}", static_cast<int>(arch));
  return kMixtralOps;  // unreachable
}

std::string supported_model_types() {
  std::vector<std::string_view> names;
  for (const ArchOps* ops : kAllArchs) names.emplace_back(ops->model_type);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config) {
  MSI_CHECK(static_cast<int64_t>(config.layer_is_moe.size()) == config.n_layers,
            "layer_is_moe has {} entries for {} layers", config.layer_is_moe.size(),
            config.n_layers);
  return arch_ops(config.arch).tensor_specs(config);
}

Result<HostTensorView> load_tensor(const TensorSource& source, const TensorSpec& spec) {
  MSI_ASSIGN_OR_RETURN(HostTensorView view, source.get(spec.name));
  if (view.shape != spec.shape) {
    return error(StatusCode::kInvalidArgument, "tensor '{}' has shape [{}], expected [{}]",
                 spec.name, fmt::join(view.shape, ", "), fmt::join(spec.shape, ", "));
  }
  if (view.dtype != DType::kF32 && view.dtype != DType::kF16 && view.dtype != DType::kBF16) {
    return error(StatusCode::kUnimplemented,
                 "tensor '{}' has dtype {}; only F32, F16 and BF16 weights are implemented",
                 spec.name, dtype_name(view.dtype));
  }
  return view;
}

// --- Tensor-spec building blocks ---

std::string layer_prefix(int layer) { return fmt::format("model.layers.{}.", layer); }

void add_spec(std::vector<TensorSpec>* specs, std::string name, std::vector<int64_t> shape,
              WeightKind kind, int layer, int expert) {
  specs->push_back(TensorSpec{std::move(name), std::move(shape), kind, layer, expert});
}

void add_embedding_specs(const ModelConfig& c, std::vector<TensorSpec>* specs) {
  add_spec(specs, "model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, WeightKind::kEmbed);
}

void add_attention_specs(const ModelConfig& c, int layer, std::vector<TensorSpec>* specs) {
  const std::string p = layer_prefix(layer);
  const int64_t h = c.hidden_size;
  add_spec(specs, p + "input_layernorm.weight", {h}, WeightKind::kAttnNorm, layer);
  add_spec(specs, p + "self_attn.q_proj.weight", {c.q_dim(), h}, WeightKind::kQProj, layer);
  add_spec(specs, p + "self_attn.k_proj.weight", {c.kv_dim(), h}, WeightKind::kKProj, layer);
  add_spec(specs, p + "self_attn.v_proj.weight", {c.kv_dim(), h}, WeightKind::kVProj, layer);
  add_spec(specs, p + "self_attn.o_proj.weight", {h, c.q_dim()}, WeightKind::kOProj, layer);
  if (c.attention_bias) {
    add_spec(specs, p + "self_attn.q_proj.bias", {c.q_dim()}, WeightKind::kQBias, layer);
    add_spec(specs, p + "self_attn.k_proj.bias", {c.kv_dim()}, WeightKind::kKBias, layer);
    add_spec(specs, p + "self_attn.v_proj.bias", {c.kv_dim()}, WeightKind::kVBias, layer);
  }
  if (c.qk_norm) {
    add_spec(specs, p + "self_attn.q_norm.weight", {c.head_dim}, WeightKind::kQNorm, layer);
    add_spec(specs, p + "self_attn.k_norm.weight", {c.head_dim}, WeightKind::kKNorm, layer);
  }
  add_spec(specs, p + "post_attention_layernorm.weight", {h}, WeightKind::kFfnNorm, layer);
}

void add_output_specs(const ModelConfig& c, std::vector<TensorSpec>* specs) {
  add_spec(specs, "model.norm.weight", {c.hidden_size}, WeightKind::kFinalNorm);
  if (!c.tie_word_embeddings) {
    add_spec(specs, "lm_head.weight", {c.vocab_size, c.hidden_size}, WeightKind::kLmHead);
  }
}

void add_mlp_specs(std::vector<TensorSpec>* specs, const std::string& prefix, MlpNames names,
                   MlpKinds kinds, int64_t hidden, int64_t inter, int layer, int expert) {
  add_spec(specs, prefix + names.gate + ".weight", {inter, hidden}, kinds.gate, layer, expert);
  add_spec(specs, prefix + names.up + ".weight", {inter, hidden}, kinds.up, layer, expert);
  add_spec(specs, prefix + names.down + ".weight", {hidden, inter}, kinds.down, layer, expert);
}

// --- Qwen MoE family ---

Status parse_qwen_moe_layers(const JsonFields& f, ModelConfig* c) {
  MSI_ASSIGN_OR_RETURN(int64_t sparse_step, f.get_int("decoder_sparse_step", 1));
  MSI_ASSIGN_OR_RETURN(std::vector<int64_t> mlp_only, f.get_int_list("mlp_only_layers"));
  if (c->n_experts > 0 && sparse_step <= 0) {
    return error(StatusCode::kInvalidArgument,
                 "config.json field 'decoder_sparse_step' must be positive, got {}", sparse_step);
  }
  c->layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c->n_layers, 0)), false);
  for (int64_t l = 0; l < c->n_layers; ++l) {
    c->layer_is_moe[l] = c->n_experts > 0 && (l + 1) % sparse_step == 0;
  }
  // NOTE: entries past the last layer are ignored, as in HF (num_hidden_layers may have been
  // overridden to a smaller model).
  for (int64_t l : mlp_only) {
    if (l >= 0 && l < c->n_layers) c->layer_is_moe[l] = false;
  }
  return Status::ok();
}

void add_qwen_mlp_specs(const ModelConfig& c, int layer, std::vector<TensorSpec>* specs) {
  const std::string p = layer_prefix(layer) + "mlp.";
  if (!c.is_moe_layer(layer)) {
    add_mlp_specs(specs, p, kProjMlpNames,
                  {WeightKind::kDenseGate, WeightKind::kDenseUp, WeightKind::kDenseDown},
                  c.hidden_size, c.intermediate_size, layer);
    return;
  }
  add_spec(specs, p + "gate.weight", {c.n_experts, c.hidden_size}, WeightKind::kRouter, layer);
  for (int e = 0; e < c.n_experts; ++e) {
    add_mlp_specs(specs, fmt::format("{}experts.{}.", p, e), kProjMlpNames,
                  {WeightKind::kExpertGate, WeightKind::kExpertUp, WeightKind::kExpertDown},
                  c.hidden_size, c.moe_intermediate_size, layer, e);
  }
}

}  // namespace msi

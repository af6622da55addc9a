// config.json parsing: the fields every supported family shares, then the family's own fields
// (model/arch/<family>.cc), then validation.
#include "model/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "model/arch/arch_internal.h"
#include "model/json_fields.h"

namespace msi {

using nlohmann::json;

const char* model_arch_name(ModelArch arch) { return arch_ops(arch).model_type; }

namespace {

Status invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

// `dtype` (transformers 5) or `torch_dtype` (transformers 4); absent means BF16.
Result<DType> parse_dtype(const JsonFields& f) {
  const char* key = f.has("dtype") ? "dtype" : "torch_dtype";
  const json* value = f.find(key);
  if (!value) return DType::kBF16;
  if (!value->is_string()) return f.type_error(key, "a string");
  std::string name = value->get<std::string>();
  if (name.starts_with("torch.")) name = name.substr(6);
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16" || name == "half") return DType::kF16;
  if (name == "float32" || name == "float") return DType::kF32;
  return error(StatusCode::kUnimplemented,
               "config.json {} '{}' is not supported (supported: bfloat16, float16, float32)", key,
               name);
}

// The rope type named by a rope_scaling / rope_parameters object ("default" when it names none).
Result<std::string> rope_type_of(const JsonFields& f, bool type_required) {
  for (const char* key : {"rope_type", "type"}) {
    if (!f.has(key)) continue;
    return f.get_string(key);
  }
  if (type_required) return f.missing("rope_type");
  return std::string("default");
}

// transformers 4: top-level rope_theta and rope_scaling; transformers 5: rope_parameters.
Result<double> parse_rope_theta(const JsonFields& f, double default_theta) {
  MSI_ASSIGN_OR_RETURN(double theta, f.get_number("rope_theta", default_theta));
  std::vector<std::string> types;
  if (const json* params = f.find("rope_parameters")) {
    if (!params->is_object()) return f.type_error("rope_parameters", "an object");
    JsonFields p(*params, "config.json", "rope_parameters.");
    MSI_ASSIGN_OR_RETURN(theta, p.get_number("rope_theta", theta));
    MSI_ASSIGN_OR_RETURN(std::string type, rope_type_of(p, /*type_required=*/false));
    types.push_back(std::move(type));
  }
  if (const json* scaling = f.find("rope_scaling")) {
    if (!scaling->is_object()) return f.type_error("rope_scaling", "an object or null");
    JsonFields s(*scaling, "config.json", "rope_scaling.");
    MSI_ASSIGN_OR_RETURN(std::string type, rope_type_of(s, /*type_required=*/true));
    types.push_back(std::move(type));
  }
  for (const std::string& type : types) {
    if (type != "default") {
      return error(StatusCode::kUnimplemented, "rope scaling type '{}' is not implemented", type);
    }
  }
  return theta;
}

Status validate(const ModelConfig& c) {
  const std::pair<const char*, int64_t> positive[] = {
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
  };
  for (const auto& [name, value] : positive) {
    if (value <= 0)
      return invalid(fmt::format("config.json {} must be positive, got {}", name, value));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return invalid(fmt::format(
        "config.json num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
        c.n_heads, c.n_kv_heads));
  }
  if (!(c.rms_norm_eps > 0.0f)) return invalid("config.json rms_norm_eps must be positive");
  if (!(c.rope_theta > 0.0)) return invalid("config.json rope_theta must be positive");
  const bool any_moe =
      std::find(c.layer_is_moe.begin(), c.layer_is_moe.end(), true) != c.layer_is_moe.end();
  const bool any_dense =
      std::find(c.layer_is_moe.begin(), c.layer_is_moe.end(), false) != c.layer_is_moe.end();
  if (any_moe) {
    if (c.n_experts_per_tok <= 0 || c.n_experts_per_tok > c.n_experts) {
      return invalid(fmt::format(
          "config.json num_experts_per_tok must be in [1, {}] (the number of experts), got {}",
          c.n_experts, c.n_experts_per_tok));
    }
    if (c.moe_intermediate_size <= 0) {
      return invalid(fmt::format("config.json moe_intermediate_size must be positive, got {}",
                                 c.moe_intermediate_size));
    }
  }
  if (any_dense && c.intermediate_size <= 0) {
    return invalid(fmt::format(
        "config.json intermediate_size must be positive (the model has dense layers), got {}",
        c.intermediate_size));
  }
  return Status::ok();
}

// Sliding-window attention is not implemented: Qwen enables it with use_sliding_window (its
// sliding_window value alone means nothing); Mixtral with a sliding_window shorter than the
// context. Either must fail at load rather than give wrong long-context outputs.
Status check_sliding_window(const JsonFields& f, const ModelConfig& c) {
  if (c.arch == ModelArch::kMixtral) {
    MSI_ASSIGN_OR_RETURN(int64_t window, f.get_int("sliding_window", 0));
    if (window > 0 && window < c.max_position_embeddings) {
      return error(StatusCode::kUnimplemented,
                   "sliding-window attention (sliding_window {}) is not implemented", window);
    }
    return Status::ok();
  }
  MSI_ASSIGN_OR_RETURN(bool use_window, f.get_bool("use_sliding_window", false));
  if (use_window) {
    return error(StatusCode::kUnimplemented, "sliding-window attention (use_sliding_window) is not implemented");
  }
  return Status::ok();
}

Result<ModelConfig> parse_unchecked(const json& j) {
  if (!j.is_object()) return invalid("config.json is not a JSON object");
  JsonFields f(j, "config.json");
  if (!f.has("model_type")) return invalid("config.json has no model_type");
  MSI_ASSIGN_OR_RETURN(std::string model_type, f.get_string("model_type"));
  const ArchOps* ops = find_arch_ops(model_type);
  if (!ops) {
    return error(StatusCode::kUnimplemented, "model_type '{}' is not supported (supported: {})",
                 model_type, supported_model_types());
  }

  ModelConfig c;
  c.arch = ops->arch;
  c.model_type = model_type;
  MSI_ASSIGN_OR_RETURN(c.vocab_size, f.get_int("vocab_size"));
  MSI_ASSIGN_OR_RETURN(c.hidden_size, f.get_int("hidden_size"));
  MSI_ASSIGN_OR_RETURN(c.n_layers, f.get_int("num_hidden_layers"));
  MSI_ASSIGN_OR_RETURN(c.n_heads, f.get_int("num_attention_heads"));
  MSI_ASSIGN_OR_RETURN(c.n_kv_heads, f.get_int("num_key_value_heads", c.n_heads));
  if (f.has("head_dim")) {
    MSI_ASSIGN_OR_RETURN(c.head_dim, f.get_int("head_dim"));
  } else if (c.n_heads <= 0) {
    c.head_dim = 0;  // validate() names num_attention_heads
  } else if (c.hidden_size % c.n_heads == 0) {
    c.head_dim = c.hidden_size / c.n_heads;
  } else {
    return invalid(
        fmt::format("config.json has no head_dim and hidden_size ({}) is not a multiple of "
                    "num_attention_heads ({})",
                    c.hidden_size, c.n_heads));
  }
  MSI_ASSIGN_OR_RETURN(double eps, f.get_number("rms_norm_eps", ops->default_rms_norm_eps));
  c.rms_norm_eps = static_cast<float>(eps);
  MSI_ASSIGN_OR_RETURN(c.rope_theta, parse_rope_theta(f, ops->default_rope_theta));
  MSI_ASSIGN_OR_RETURN(c.max_position_embeddings,
                       f.get_int("max_position_embeddings", ops->default_max_position_embeddings));
  // Mixtral spells it num_local_experts, Qwen num_experts; transformers 5 may write either.
  const char* experts_key = ops->arch == ModelArch::kMixtral ? "num_local_experts" : "num_experts";
  if (!f.has(experts_key))
    experts_key = f.has("num_local_experts") ? "num_local_experts" : "num_experts";
  MSI_ASSIGN_OR_RETURN(c.n_experts, f.get_int(experts_key));
  MSI_ASSIGN_OR_RETURN(c.n_experts_per_tok, f.get_int("num_experts_per_tok"));
  MSI_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.get_bool("tie_word_embeddings", false));
  MSI_ASSIGN_OR_RETURN(c.dtype, parse_dtype(f));
  MSI_ASSIGN_OR_RETURN(c.bos_token_id, f.get_int("bos_token_id", -1));
  MSI_ASSIGN_OR_RETURN(c.eos_token_ids, f.get_int_list("eos_token_id"));

  MSI_RETURN_IF_ERROR(ops->parse_config(f, &c));
  MSI_RETURN_IF_ERROR(check_sliding_window(f, c));
  MSI_RETURN_IF_ERROR(validate(c));
  return c;
}

}  // namespace

Result<ModelConfig> parse_model_config(const json& config) {
  // NOTE: JsonFields checks every type before reading; this catch is a backstop so that a
  // missed case still becomes a Status instead of an exception.
  try {
    return parse_unchecked(config);
  } catch (const json::exception& e) {
    return invalid(fmt::format("config.json: {}", e.what()));
  }
}

Result<json> read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return error(StatusCode::kNotFound, "{} does not exist or is not a file", path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kIoError, "cannot open {}", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error(StatusCode::kIoError, "cannot read {}", path.string());
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    return error(StatusCode::kInvalidArgument, "{} is not valid JSON: {}", path.string(), e.what());
  }
}

Result<ModelConfig> load_model_config(const std::filesystem::path& model_dir,
                                      const json* overrides) {
  MSI_ASSIGN_OR_RETURN(json raw, read_json_file(model_dir / "config.json"));
  if (overrides && !overrides->is_null()) raw.merge_patch(*overrides);
  Result<ModelConfig> parsed = parse_model_config(raw);
  if (!parsed.is_ok()) return parsed.status().with_context(model_dir.string());
  ModelConfig config = std::move(parsed).value();

  const std::filesystem::path gen_path = model_dir / "generation_config.json";
  std::error_code ec;
  if (std::filesystem::exists(gen_path, ec)) {
    MSI_ASSIGN_OR_RETURN(json gen, read_json_file(gen_path));
    if (!gen.is_object()) return invalid(fmt::format("{} is not a JSON object", gen_path.string()));
    JsonFields f(gen, gen_path.string());
    MSI_ASSIGN_OR_RETURN(std::vector<int64_t> extra, f.get_int_list("eos_token_id"));
    for (int64_t id : extra) {
      auto& ids = config.eos_token_ids;
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
  }
  return config;
}

}  // namespace msi

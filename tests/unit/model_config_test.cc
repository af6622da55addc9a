#include <atomic>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.h"
#include "model/config.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

using msi::test::TempDir;

// A minimal transformers-4 style qwen3_moe config.
json qwen3_t4() {
  return json::parse(R"({
    "model_type": "qwen3_moe", "vocab_size": 1000, "hidden_size": 64,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 32, "moe_intermediate_size": 32, "intermediate_size": 128,
    "num_experts": 8, "num_experts_per_tok": 2, "rope_theta": 500000.0,
    "rope_scaling": null, "torch_dtype": "float16", "eos_token_id": [5, 6],
    "bos_token_id": null
  })");
}

ModelConfig parse_ok(const json& j) {
  Result<ModelConfig> c = parse_model_config(j);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? c.value() : ModelConfig{};
}

void expect_error(const json& j, StatusCode code, const std::string& substr) {
  Result<ModelConfig> c = parse_model_config(j);
  ASSERT_FALSE(c.is_ok()) << j.dump();
  EXPECT_EQ(c.status().code(), code) << c.status().to_string();
  EXPECT_THAT(c.status().message(), HasSubstr(substr));
}

TEST(ModelConfig, TinyMixtralFixture) {
  Result<ModelConfig> r = load_model_config(kData / "tiny-mixtral");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const ModelConfig& c = r.value();
  EXPECT_EQ(c.arch, ModelArch::kMixtral);
  EXPECT_STREQ(model_arch_name(c.arch), "mixtral");
  EXPECT_EQ(c.vocab_size, 2000);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.n_layers, 3);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.n_experts, 8);
  EXPECT_EQ(c.n_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 256);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_THAT(c.layer_is_moe, ElementsAre(true, true, true));
}

TEST(ModelConfig, TinyQwen3MoeFixture) {
  Result<ModelConfig> r = load_model_config(kData / "tiny-qwen3-moe");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const ModelConfig& c = r.value();
  EXPECT_EQ(c.arch, ModelArch::kQwen3Moe);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.n_experts, 16);
  EXPECT_EQ(c.n_experts_per_tok, 4);
  EXPECT_EQ(c.moe_intermediate_size, 48);
  EXPECT_EQ(c.intermediate_size, 192);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_THAT(c.layer_is_moe, ElementsAre(true, true, true));
}

TEST(ModelConfig, Transformers4Spellings) {
  const ModelConfig c = parse_ok(qwen3_t4());
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.dtype, DType::kF16);
  EXPECT_EQ(c.n_experts, 8);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(5, 6));
  EXPECT_FALSE(c.norm_topk_prob);  // qwen default
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(c.max_position_embeddings, 32768);

  json j = qwen3_t4();
  j["rope_scaling"] = {{"type", "default"}};
  j.erase("torch_dtype");
  EXPECT_EQ(parse_ok(j).dtype, DType::kBF16);
  j["rope_scaling"] = {{"rope_type", "default"}};
  j["dtype"] = "float32";
  EXPECT_EQ(parse_ok(j).dtype, DType::kF32);
}

TEST(ModelConfig, Transformers5RopeParameters) {
  json j = qwen3_t4();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_theta", 123.0}, {"rope_type", "default"}};
  EXPECT_DOUBLE_EQ(parse_ok(j).rope_theta, 123.0);
  j.erase("rope_parameters");
  EXPECT_DOUBLE_EQ(parse_ok(j).rope_theta, 10000.0);  // qwen default
}

TEST(ModelConfig, RopeScalingTypesAreUnimplemented) {
  json j = qwen3_t4();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_error(j, StatusCode::kUnimplemented, "rope scaling type 'yarn' is not implemented");
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  expect_error(j, StatusCode::kUnimplemented, "'linear'");
  j["rope_scaling"] = {{"factor", 2.0}};
  expect_error(j, StatusCode::kInvalidArgument, "rope_scaling.rope_type");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_theta", 1e6}, {"rope_type", "llama3"}};
  expect_error(j, StatusCode::kUnimplemented, "rope scaling type 'llama3' is not implemented");
}

TEST(ModelConfig, SlidingWindowIsUnimplemented) {
  json j = qwen3_t4();
  j["sliding_window"] = 4096;  // without use_sliding_window: no window (Qwen1.5-MoE ships this)
  parse_ok(j);
  j["use_sliding_window"] = true;
  expect_error(j, StatusCode::kUnimplemented, "sliding-window attention");
  json m = json::parse(R"({
    "model_type": "mixtral", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
    "num_local_experts": 4, "num_experts_per_tok": 2, "max_position_embeddings": 8192,
    "sliding_window": null
  })");
  parse_ok(m);
  m["sliding_window"] = 4096;
  expect_error(m, StatusCode::kUnimplemented, "sliding_window 4096");
  m["sliding_window"] = 8192;  // a window as long as the context is no window
  parse_ok(m);
}

TEST(ModelConfig, HeadDimDerivedWhenAbsentOrNull) {
  json j = qwen3_t4();
  j["head_dim"] = nullptr;
  EXPECT_EQ(parse_ok(j).head_dim, 16);
  j.erase("head_dim");
  EXPECT_EQ(parse_ok(j).head_dim, 16);
}

TEST(ModelConfig, QwenDenseAndMoeLayers) {
  json j = qwen3_t4();
  j["num_hidden_layers"] = 6;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3, 40};  // 40 is past the last layer: ignored, as in HF
  EXPECT_THAT(parse_ok(j).layer_is_moe, ElementsAre(false, true, false, false, false, true));
  j["num_experts"] = 0;
  j["decoder_sparse_step"] = 1;
  EXPECT_THAT(parse_ok(j).layer_is_moe, ElementsAre(false, false, false, false, false, false));
  j["num_experts"] = 8;
  j.erase("intermediate_size");
  j["mlp_only_layers"] = {0};
  expect_error(j, StatusCode::kInvalidArgument, "intermediate_size");
}

TEST(ModelConfig, Qwen2MoeDefaults) {
  json j = qwen3_t4();
  j["model_type"] = "qwen2_moe";
  j["shared_expert_intermediate_size"] = 96;
  ModelConfig c = parse_ok(j);
  EXPECT_EQ(c.arch, ModelArch::kQwen2Moe);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.shared_expert_intermediate_size, 96);
  j["qkv_bias"] = false;
  j.erase("shared_expert_intermediate_size");
  j["norm_topk_prob"] = true;
  c = parse_ok(j);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  EXPECT_TRUE(c.norm_topk_prob);
}

TEST(ModelConfig, MixtralIgnoresNormTopkAndDefaults) {
  json j = json::parse(R"({"model_type": "mixtral", "vocab_size": 100, "hidden_size": 32,
    "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    "num_local_experts": 4, "num_experts_per_tok": 2, "norm_topk_prob": false,
    "tie_word_embeddings": true})");
  const ModelConfig c = parse_ok(j);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.moe_intermediate_size, 64);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.max_position_embeddings, 131072);
}

TEST(ModelConfig, ModelTypeErrors) {
  json j = qwen3_t4();
  j.erase("model_type");
  expect_error(j, StatusCode::kInvalidArgument, "config.json has no model_type");
  j["model_type"] = "llama";
  expect_error(j, StatusCode::kUnimplemented, "'llama'");
  expect_error(j, StatusCode::kUnimplemented, "mixtral, qwen2_moe, qwen3_moe");
  j["model_type"] = 3;
  expect_error(j, StatusCode::kInvalidArgument, "model_type");
  expect_error(json::array(), StatusCode::kInvalidArgument, "not a JSON object");
}

TEST(ModelConfig, WrongTypesNameTheField) {
  const std::pair<const char*, json> cases[] = {
      {"hidden_size", "64"},       {"num_experts", 8.5},      {"rms_norm_eps", "x"},
      {"tie_word_embeddings", 1},  {"eos_token_id", "2"},     {"eos_token_id", {1, "2"}},
      {"mlp_only_layers", "none"}, {"rope_scaling", "yarn"},  {"rope_parameters", 5},
      {"torch_dtype", 16},         {"norm_topk_prob", "yes"}, {"head_dim", -1.5},
  };
  for (const auto& [field, value] : cases) {
    json j = qwen3_t4();
    j[field] = value;
    expect_error(j, StatusCode::kInvalidArgument, field);
  }
  json j = qwen3_t4();
  j["torch_dtype"] = "float8_e4m3fn";
  expect_error(j, StatusCode::kUnimplemented, "float8_e4m3fn");
}

TEST(ModelConfig, Validation) {
  const std::tuple<const char*, json, const char*> cases[] = {
      {"vocab_size", 0, "vocab_size must be positive"},
      {"hidden_size", -64, "hidden_size must be positive"},
      {"num_key_value_heads", 3, "multiple of num_key_value_heads"},
      {"num_experts_per_tok", 0, "num_experts_per_tok"},
      {"num_experts_per_tok", 9, "num_experts_per_tok"},
      {"moe_intermediate_size", 0, "moe_intermediate_size"},
      {"num_hidden_layers", 0, "num_hidden_layers must be positive"},
  };
  for (const auto& [field, value, message] : cases) {
    json j = qwen3_t4();
    j[field] = value;
    expect_error(j, StatusCode::kInvalidArgument, message);
  }
  json j = qwen3_t4();
  j.erase("hidden_size");
  expect_error(j, StatusCode::kInvalidArgument, "config.json has no 'hidden_size'");
  j = qwen3_t4();
  j["attention_bias"] = true;  // would need an o_proj bias
  expect_error(j, StatusCode::kUnimplemented, "attention_bias");
}

TEST(ModelConfig, ReadJsonFileErrors) {
  TempDir dir;
  Result<json> missing = read_json_file(dir.path() / "nope.json");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.json"));

  dir.write("bad.json", "{\"a\": 1,");
  Result<json> bad = read_json_file(dir.path() / "bad.json");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.json"));
  EXPECT_THAT(bad.status().message(), HasSubstr("parse error"));

  Result<ModelConfig> no_config = load_model_config(dir.path());
  ASSERT_FALSE(no_config.is_ok());
  EXPECT_EQ(no_config.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(no_config.status().message(), HasSubstr("config.json"));
}

TEST(ModelConfig, GenerationConfigEosUnionAndOverrides) {
  TempDir dir;
  dir.write("config.json", qwen3_t4().dump());
  dir.write("generation_config.json", R"({"eos_token_id": [6, 7], "bos_token_id": 1})");
  Result<ModelConfig> c = load_model_config(dir.path());
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(5, 6, 7));

  const json overrides = {
      {"num_hidden_layers", 2}, {"rope_scaling", nullptr}, {"mlp_only_layers", {1}}};
  c = load_model_config(dir.path(), &overrides);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->n_layers, 2);
  EXPECT_THAT(c->layer_is_moe, ElementsAre(true, false));

  const json bad_override = {{"hidden_size", "wide"}};
  c = load_model_config(dir.path(), &bad_override);
  ASSERT_FALSE(c.is_ok());
  EXPECT_THAT(c.status().message(), HasSubstr("hidden_size"));

  dir.write("generation_config.json", R"({"eos_token_id": "x"})");
  c = load_model_config(dir.path());
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("generation_config.json"));
}

}  // namespace
}  // namespace msi

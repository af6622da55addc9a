#include <atomic>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "model/arch.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

// name -> shape of every tensor in every .safetensors file of `dir`.
std::map<std::string, std::vector<int64_t>> checkpoint_shapes(const fs::path& dir) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".safetensors") continue;
    auto file = SafetensorsFile::open(entry.path());
    EXPECT_TRUE(file.is_ok()) << file.status().to_string();
    if (!file.is_ok()) continue;
    for (const std::string& name : (*file)->names()) out[name] = (*file)->get(name)->shape;
  }
  return out;
}

std::map<std::string, std::vector<int64_t>> spec_shapes(const std::vector<TensorSpec>& specs) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const TensorSpec& spec : specs) {
    EXPECT_TRUE(out.emplace(spec.name, spec.shape).second) << "duplicate " << spec.name;
  }
  return out;
}

const TensorSpec* find_spec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

void expect_specs_match_checkpoint(const fs::path& dir) {
  auto config = load_model_config(dir);
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  const std::vector<TensorSpec> specs = model_tensor_specs(*config);
  EXPECT_EQ(spec_shapes(specs), checkpoint_shapes(dir));
  auto source = open_checkpoint(dir);
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  for (const TensorSpec& spec : specs) {
    auto view = load_tensor(**source, spec);
    ASSERT_TRUE(view.is_ok()) << view.status().to_string();
    EXPECT_EQ(view->dtype, DType::kBF16);
  }
}

TEST(ModelArch, MixtralSpecsMatchFixture) { expect_specs_match_checkpoint(kData / "tiny-mixtral"); }

TEST(ModelArch, Qwen3MoeSpecsMatchFixture) {
  expect_specs_match_checkpoint(kData / "tiny-qwen3-moe");
}

TEST(ModelArch, MixtralKindsAndTiedEmbeddings) {
  auto config = load_model_config(kData / "tiny-mixtral");
  ASSERT_TRUE(config.is_ok());
  std::vector<TensorSpec> specs = model_tensor_specs(*config);
  const TensorSpec* w1 = find_spec(specs, "model.layers.1.block_sparse_moe.experts.5.w1.weight");
  const TensorSpec* w3 = find_spec(specs, "model.layers.1.block_sparse_moe.experts.5.w3.weight");
  const TensorSpec* w2 = find_spec(specs, "model.layers.1.block_sparse_moe.experts.5.w2.weight");
  ASSERT_TRUE(w1 && w2 && w3);
  EXPECT_EQ(w1->kind, WeightKind::kExpertGate);
  EXPECT_EQ(w3->kind, WeightKind::kExpertUp);
  EXPECT_EQ(w2->kind, WeightKind::kExpertDown);
  EXPECT_EQ(w1->layer, 1);
  EXPECT_EQ(w1->expert, 5);
  EXPECT_TRUE(is_expert_weight(w2->kind));
  const TensorSpec* router = find_spec(specs, "model.layers.0.block_sparse_moe.gate.weight");
  ASSERT_TRUE(router);
  EXPECT_EQ(router->kind, WeightKind::kRouter);
  EXPECT_EQ(router->expert, -1);
  EXPECT_EQ(find_spec(specs, "lm_head.weight")->kind, WeightKind::kLmHead);

  config->tie_word_embeddings = true;
  specs = model_tensor_specs(*config);
  EXPECT_EQ(find_spec(specs, "lm_head.weight"), nullptr);
  EXPECT_NE(find_spec(specs, "model.embed_tokens.weight"), nullptr);
}

TEST(ModelArch, Qwen2MoeWithDenseLayersAndSharedExpert) {
  const json j = json::parse(R"({
    "model_type": "qwen2_moe", "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 40,
    "moe_intermediate_size": 8, "shared_expert_intermediate_size": 24, "num_experts": 2,
    "num_experts_per_tok": 1, "mlp_only_layers": [1], "tie_word_embeddings": true})");
  auto config = parse_model_config(j);
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  std::set<std::string> names;
  for (const TensorSpec& spec : model_tensor_specs(*config)) names.insert(spec.name);

  std::set<std::string> expected = {"model.embed_tokens.weight", "model.norm.weight"};
  for (int l = 0; l < 3; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* n :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
          "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
          "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}) {
      expected.insert(p + n);
    }
    if (l == 1) {
      for (const char* n : {"gate_proj", "up_proj", "down_proj"})
        expected.insert(p + "mlp." + n + ".weight");
      continue;
    }
    expected.insert(p + "mlp.gate.weight");
    expected.insert(p + "mlp.shared_expert_gate.weight");
    for (const char* n : {"gate_proj", "up_proj", "down_proj"}) {
      expected.insert(p + "mlp.shared_expert." + n + ".weight");
      for (int e = 0; e < 2; ++e) {
        expected.insert(p + "mlp.experts." + std::to_string(e) + "." + n + ".weight");
      }
    }
  }
  EXPECT_EQ(names, expected);

  const std::vector<TensorSpec> specs = model_tensor_specs(*config);
  auto shape = [&](const std::string& name) { return find_spec(specs, name)->shape; };
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(shape("model.layers.0.self_attn.q_proj.weight"), (Shape{16, 16}));
  EXPECT_EQ(shape("model.layers.0.self_attn.k_proj.bias"), (Shape{8}));
  EXPECT_EQ(shape("model.layers.0.self_attn.o_proj.weight"), (Shape{16, 16}));
  EXPECT_EQ(shape("model.layers.0.mlp.gate.weight"), (Shape{2, 16}));
  EXPECT_EQ(shape("model.layers.0.mlp.experts.1.down_proj.weight"), (Shape{16, 8}));
  EXPECT_EQ(shape("model.layers.2.mlp.shared_expert.up_proj.weight"), (Shape{24, 16}));
  EXPECT_EQ(shape("model.layers.2.mlp.shared_expert_gate.weight"), (Shape{1, 16}));
  EXPECT_EQ(shape("model.layers.1.mlp.down_proj.weight"), (Shape{16, 40}));
  EXPECT_EQ(find_spec(specs, "model.layers.1.mlp.gate_proj.weight")->kind, WeightKind::kDenseGate);
  EXPECT_EQ(find_spec(specs, "model.layers.2.mlp.shared_expert_gate.weight")->kind,
            WeightKind::kSharedExpertGate);
  EXPECT_EQ(find_spec(specs, "model.layers.2.mlp.shared_expert.down_proj.weight")->kind,
            WeightKind::kSharedDown);
  EXPECT_FALSE(is_expert_weight(WeightKind::kSharedGate));
}

// A one-tensor in-memory source for load_tensor's checks.
class OneTensorSource : public TensorSource {
 public:
  explicit OneTensorSource(HostTensorView view) : view_(std::move(view)) {}
  Result<HostTensorView> get(const std::string& name) const override {
    if (name != "t") return error(StatusCode::kNotFound, "tensor '{}' not found", name);
    return view_;
  }

 private:
  HostTensorView view_;
};

TEST(ModelArch, LoadTensorChecksShapeAndDtype) {
  const int32_t data[6] = {};
  const TensorSpec spec{"t", {2, 3}, WeightKind::kRouter};
  OneTensorSource f32({DType::kF32, {2, 3}, data});
  EXPECT_TRUE(load_tensor(f32, spec).is_ok());

  OneTensorSource wrong_shape({DType::kF32, {3, 2}, data});
  Status s = load_tensor(wrong_shape, spec).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 't' has shape [3, 2], expected [2, 3]");

  OneTensorSource i32({DType::kI32, {2, 3}, data});
  s = load_tensor(i32, spec).status();
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("I32"));

  s = load_tensor(f32, TensorSpec{"missing", {1}, WeightKind::kEmbed}).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace msi

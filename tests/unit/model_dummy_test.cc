#include <atomic>
#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.h"
#include "model/arch.h"
#include "model/dummy.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = MSI_TEST_DATA_DIR;

using msi::test::TempDir;

ModelConfig load_config(const std::string& fixture) {
  auto config = load_model_config(kData / fixture);
  EXPECT_TRUE(config.is_ok()) << config.status().to_string();
  return config.is_ok() ? config.value() : ModelConfig{};
}

bool same_bytes(const HostTensorView& a, const HostTensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape &&
         std::memcmp(a.data, b.data, a.numel() * dtype_size(a.dtype)) == 0;
}

std::vector<float> to_floats(const HostTensorView& v) {
  std::vector<float> out(v.numel());
  convert_to_f32(v.data, v.dtype, out.data(), out.size());
  return out;
}

TEST(ModelDummy, DeterministicPerSeedAndName) {
  const ModelConfig config = load_config("tiny-qwen3-moe");
  auto a = make_dummy_source(config, 7);
  auto b = make_dummy_source(config, 7);
  auto c = make_dummy_source(config, 8);
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    auto va = a->get(spec.name);
    auto vb = b->get(spec.name);
    auto vc = c->get(spec.name);
    ASSERT_TRUE(va.is_ok() && vb.is_ok() && vc.is_ok()) << spec.name;
    EXPECT_EQ(va->dtype, DType::kBF16);
    EXPECT_EQ(va->shape, spec.shape);
    EXPECT_TRUE(same_bytes(*va, *vb)) << spec.name;
    EXPECT_FALSE(same_bytes(*va, *vc)) << spec.name;
    // Cached: the same buffer on a second request.
    EXPECT_EQ(a->get(spec.name)->data, va->data);
  }
  // Different names differ too.
  auto e0 = a->get("model.layers.0.mlp.experts.0.up_proj.weight");
  auto e1 = a->get("model.layers.0.mlp.experts.1.up_proj.weight");
  EXPECT_FALSE(std::memcmp(e0->data, e1->data, e0->numel() * 2) == 0);
  EXPECT_EQ(a->get("no.such.tensor").status().code(), StatusCode::kNotFound);
}

TEST(ModelDummy, ValueRanges) {
  const ModelConfig config = load_config("tiny-mixtral");
  auto source = make_dummy_source(config, 1);
  auto check = [&](const std::string& name, float lo, float hi) {
    auto view = source->get(name);
    ASSERT_TRUE(view.is_ok()) << view.status().to_string();
    const std::vector<float> values = to_floats(*view);
    float mn = values[0], mx = values[0];
    for (float v : values) {
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    const float bf16_rounding = std::max(std::fabs(lo), std::fabs(hi)) / 128.0f;
    EXPECT_GE(mn, lo - bf16_rounding) << name;
    EXPECT_LE(mx, hi + bf16_rounding) << name;
    // Spread over most of the range (these tensors are large enough).
    EXPECT_LT(mn, lo + 0.1f * (hi - lo)) << name;
    EXPECT_GT(mx, hi - 0.1f * (hi - lo)) << name;
  };
  check("model.layers.0.input_layernorm.weight", 0.9f, 1.1f);
  check("model.norm.weight", 0.9f, 1.1f);
  check("model.embed_tokens.weight", -1.0f, 1.0f);
  const float a128 = 1.0f / std::sqrt(128.0f), a256 = 1.0f / std::sqrt(256.0f);
  check("lm_head.weight", -a128, a128);
  check("model.layers.2.block_sparse_moe.experts.3.w2.weight", -a256, a256);
  check("model.layers.2.block_sparse_moe.experts.3.w1.weight", -a128, a128);
}

TEST(ModelDummy, ThreadSafeAndStable) {
  const ModelConfig config = load_config("tiny-mixtral");
  auto source = make_dummy_source(config, 3);
  auto reference = make_dummy_source(config, 3);
  const std::vector<TensorSpec> specs = model_tensor_specs(config);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < specs.size(); ++i) {
        const TensorSpec& spec = specs[(i + t * 7) % specs.size()];
        auto view = source->get(spec.name);
        if (!view.is_ok() || !same_bytes(*view, *reference->get(spec.name))) ++mismatches;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

void expect_checkpoint_matches(const fs::path& fixture, int64_t max_shard_bytes, bool sharded) {
  auto config_json = read_json_file(fixture / "config.json");
  ASSERT_TRUE(config_json.is_ok());
  TempDir dir;
  const Status written = write_dummy_checkpoint(*config_json, dir.path(), 11, max_shard_bytes);
  ASSERT_TRUE(written.is_ok()) << written.to_string();
  EXPECT_EQ(fs::exists(dir.path() / "model.safetensors.index.json"), sharded);
  EXPECT_EQ(fs::exists(dir.path() / "model.safetensors"), !sharded);

  auto config = load_model_config(dir.path());
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  auto original = parse_model_config(*config_json);
  ASSERT_TRUE(original.is_ok());
  EXPECT_EQ(config->arch, original->arch);
  EXPECT_EQ(config->n_experts, original->n_experts);
  EXPECT_EQ(config->layer_is_moe, original->layer_is_moe);

  auto checkpoint = open_checkpoint(dir.path());
  ASSERT_TRUE(checkpoint.is_ok()) << checkpoint.status().to_string();
  auto dummy = make_dummy_source(*config, 11);
  int64_t total = 0;
  for (const TensorSpec& spec : model_tensor_specs(*config)) {
    auto from_disk = load_tensor(**checkpoint, spec);
    ASSERT_TRUE(from_disk.is_ok()) << from_disk.status().to_string();
    EXPECT_TRUE(same_bytes(*from_disk, *dummy->get(spec.name))) << spec.name;
    total += from_disk->numel() * 2;
  }
  if (!sharded) return;
  auto index = read_json_file(dir.path() / "model.safetensors.index.json");
  ASSERT_TRUE(index.is_ok());
  EXPECT_EQ((*index)["metadata"]["total_size"].get<int64_t>(), total);
  std::set<std::string> shard_files;
  for (const auto& [name, file] : (*index)["weight_map"].items()) shard_files.insert(file);
  ASSERT_GT(shard_files.size(), 1u);
  const std::string last = *shard_files.rbegin();
  EXPECT_EQ(last, "model-" +
                      fmt::format("{:05d}-of-{:05d}", shard_files.size(), shard_files.size()) +
                      ".safetensors");
  for (const std::string& file : shard_files) {
    // Data of at most max_shard_bytes (no tensor here exceeds it), plus the header.
    auto st = SafetensorsFile::open(dir.path() / file);
    ASSERT_TRUE(st.is_ok());
    int64_t bytes = 0;
    for (const std::string& name : (*st)->names()) bytes += (*st)->get(name)->numel() * 2;
    EXPECT_LE(bytes, max_shard_bytes) << file;
  }
}

TEST(ModelDummy, WriteSingleFileCheckpoint) {
  expect_checkpoint_matches(kData / "tiny-mixtral", int64_t{1} << 40, /*sharded=*/false);
}

TEST(ModelDummy, WriteShardedCheckpoint) {
  expect_checkpoint_matches(kData / "tiny-mixtral", 1 << 20, /*sharded=*/true);
  expect_checkpoint_matches(kData / "tiny-qwen3-moe", 500 * 1000, /*sharded=*/true);
}

TEST(ModelDummy, WriteRejectsBadInput) {
  TempDir dir;
  auto config_json = read_json_file(kData / "tiny-mixtral" / "config.json");
  ASSERT_TRUE(config_json.is_ok());
  EXPECT_EQ(write_dummy_checkpoint(*config_json, dir.path(), 0, 0).code(),
            StatusCode::kInvalidArgument);
  json bad = *config_json;
  bad["model_type"] = "llama";
  EXPECT_EQ(write_dummy_checkpoint(bad, dir.path(), 0, 1 << 20).code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace msi

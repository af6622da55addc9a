// Dummy weights: a counter-based hash PRNG (splitmix64 over (seed, tensor name, index)), so any
// tensor is generated independently of the others, in one pass, on any thread.
#include "model/dummy.h"

#include <cmath>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include "model/arch.h"

namespace msi {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

uint64_t splitmix64(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Values are center + U(-half_width, half_width).
struct Distribution {
  float center;
  float half_width;
};

Distribution distribution_of(const TensorSpec& spec) {
  switch (spec.kind) {
    case WeightKind::kAttnNorm:
    case WeightKind::kFfnNorm:
    case WeightKind::kFinalNorm:
    case WeightKind::kQNorm:
    case WeightKind::kKNorm: return {1.0f, 0.1f};
    case WeightKind::kQBias:
    case WeightKind::kKBias:
    case WeightKind::kVBias: return {0.0f, 0.1f};
    case WeightKind::kEmbed: return {0.0f, 1.0f};
    default: {
      // Keeps activations O(1) through each matmul: fan_in is the last (input) dim.
      const int64_t fan_in = spec.shape.empty() ? 1 : std::max<int64_t>(spec.shape.back(), 1);
      return {0.0f, 1.0f / std::sqrt(static_cast<float>(fan_in))};
    }
  }
}

GeneratedTensor generated_of(const TensorSpec& spec, uint64_t seed) {
  const Distribution dist = distribution_of(spec);
  return GeneratedTensor{splitmix64(fnv1a64(spec.name) ^ splitmix64(seed)), dist.center, dist.half_width};
}

// The BF16 bytes (little-endian) of one tensor; depends only on (seed, spec).
std::vector<uint8_t> generate_dummy_tensor(const TensorSpec& spec, uint64_t seed) {
  int64_t numel = 1;
  for (int64_t d : spec.shape) numel *= d;
  const GeneratedTensor g = generated_of(spec, seed);
  std::vector<uint8_t> bytes(static_cast<size_t>(numel) * 2);
  for (int64_t i = 0; i < numel; ++i) {
    const uint16_t v = dummy_value_bf16(g, i);
    bytes[2 * i] = static_cast<uint8_t>(v & 0xff);
    bytes[2 * i + 1] = static_cast<uint8_t>(v >> 8);
  }
  return bytes;
}

class DummySource final : public TensorSource {
 public:
  DummySource(const ModelConfig& config, uint64_t seed) : seed_(seed) {
    for (TensorSpec& spec : model_tensor_specs(config)) {
      std::string name = spec.name;
      specs_.emplace(std::move(name), std::move(spec));
    }
  }

  std::optional<GeneratedTensor> generated(const std::string& name) const override {
    auto it = specs_.find(name);
    if (it == specs_.end()) return std::nullopt;
    return generated_of(it->second, seed_);
  }

  void release(const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.erase(name);
  }

  Result<HostTensorView> get(const std::string& name) const override {
    auto spec_it = specs_.find(name);
    if (spec_it == specs_.end()) {
      return error(StatusCode::kNotFound, "tensor '{}' not found in the dummy weights", name);
    }
    const TensorSpec& spec = spec_it->second;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(name);
      if (it != cache_.end()) return view_of(spec, it->second);
    }
    // NOTE: generated outside the lock so that threads loading different tensors run in
    // parallel; if two threads race on one tensor, both produce the same bytes and the first
    // insert wins.
    std::vector<uint8_t> bytes = generate_dummy_tensor(spec, seed_);
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = cache_.emplace(name, std::move(bytes));
    return view_of(spec, it->second);
  }

 private:
  static HostTensorView view_of(const TensorSpec& spec, const std::vector<uint8_t>& bytes) {
    return HostTensorView{DType::kBF16, spec.shape, bytes.data()};
  }

  uint64_t seed_;
  std::unordered_map<std::string, TensorSpec> specs_;
  mutable std::mutex mu_;
  // Guarded by mu_. NOTE: unordered_map never moves its elements, so views stay valid.
  mutable std::unordered_map<std::string, std::vector<uint8_t>> cache_;
};

Status write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return error(StatusCode::kIoError, "cannot create {}", path.string());
  out << text;
  out.close();
  if (!out) return error(StatusCode::kIoError, "writing {} failed", path.string());
  return Status::ok();
}

int64_t bf16_bytes(const TensorSpec& spec) {
  int64_t numel = 1;
  for (int64_t d : spec.shape) numel *= d;
  return numel * 2;
}

}  // namespace

uint16_t dummy_value_bf16(const GeneratedTensor& g, int64_t i) {
  const uint64_t z = splitmix64(g.stream + static_cast<uint64_t>(i) * kGolden);
  const float u = static_cast<float>(z >> 40) * 0x1p-24f;  // [0, 1)
  // NOTE: written as separate roundings (no fused multiply-add) so the device generator, which
  // uses __fmul_rn / __fadd_rn, produces the same bits.
  const float scaled = g.half_width * (2.0f * u - 1.0f);
  return f32_to_bf16(g.center + scaled);
}

std::unique_ptr<TensorSource> make_dummy_source(const ModelConfig& config, uint64_t seed) {
  return std::make_unique<DummySource>(config, seed);
}

Status write_dummy_checkpoint(const nlohmann::json& config_json, const fs::path& out_dir,
                              uint64_t seed, int64_t max_shard_bytes) {
  if (max_shard_bytes <= 0) {
    return error(StatusCode::kInvalidArgument, "max_shard_bytes must be positive, got {}",
                 max_shard_bytes);
  }
  MSI_ASSIGN_OR_RETURN(ModelConfig config, parse_model_config(config_json));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec)
    return error(StatusCode::kIoError, "cannot create {}: {}", out_dir.string(), ec.message());
  MSI_RETURN_IF_ERROR(write_text_file(out_dir / "config.json", config_json.dump(2) + "\n"));

  // Greedy sharding in spec order, like HF's save_pretrained: a tensor larger than
  // max_shard_bytes gets a shard of its own.
  const std::vector<TensorSpec> specs = model_tensor_specs(config);
  std::vector<std::vector<const TensorSpec*>> shards;
  int64_t shard_bytes = 0, total_bytes = 0;
  for (const TensorSpec& spec : specs) {
    const int64_t bytes = bf16_bytes(spec);
    if (shards.empty() || (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&spec);
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  const size_t n_shards = shards.size();
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < n_shards; ++i) {
    const std::string file_name =
        n_shards == 1 ? std::string("model.safetensors")
                      : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n_shards);
    // Only one shard's bytes are in memory at a time.
    std::vector<TensorToWrite> tensors;
    for (const TensorSpec* spec : shards[i]) {
      tensors.push_back(
          {spec->name, DType::kBF16, spec->shape, generate_dummy_tensor(*spec, seed)});
      weight_map[spec->name] = file_name;
    }
    MSI_RETURN_IF_ERROR(write_safetensors(out_dir / file_name, tensors));
  }

  const fs::path index_path = out_dir / "model.safetensors.index.json";
  if (n_shards == 1) {
    // A stale index would win over the new model.safetensors in open_checkpoint.
    fs::remove(index_path, ec);
    return Status::ok();
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}},
                                {"weight_map", weight_map}};
  return write_text_file(index_path, index.dump(2) + "\n");
}

}  // namespace msi

// Dummy weights: deterministic pseudo-random tensors made from a config alone
// (`--load-format dummy`), for benchmarks of real shapes without checkpoints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "model/config.h"
#include "model/safetensors.h"

namespace msi {

// A TensorSource that generates each tensor of model_tensor_specs(config) on first request,
// deterministically from (seed, tensor name): the same name always gives the same values.
// Values: norms ~1 (1 + small noise); other weights uniform in ±1/sqrt(fan_in); biases small.
// Generated tensors are BF16 (like real checkpoints). Thread-safe.
// Its generated() describes every tensor, so a backend may generate it on the device instead.
std::unique_ptr<TensorSource> make_dummy_source(const ModelConfig& config, uint64_t seed = 0);

// Element i of a generated tensor, as bf16 bits (the host generator; Backend::fill_dummy
// reproduces it on a device).
uint16_t dummy_value_bf16(const GeneratedTensor& g, int64_t i);

// Writes a complete random HF-layout checkpoint for `config_json` into `out_dir`:
// config.json (as given), model.safetensors or shards of at most `max_shard_bytes` with
// model.safetensors.index.json, all from make_dummy_source.
Status write_dummy_checkpoint(const nlohmann::json& config_json, const std::filesystem::path& out_dir,
                              uint64_t seed, int64_t max_shard_bytes);

}  // namespace msi

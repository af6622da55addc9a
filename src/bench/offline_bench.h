// msinfer bench (offline): the decode step of one attention worker with colocated experts on one
// device, measured against its roofline floor. Not a test: a tool with JSON output.
//
// The run: measure the device's two ceilings (HBM bandwidth, bf16 tensor throughput) first; load
// the model (dummy weights are generated on the device); give each of `batch_size` sequences an
// `input_len`-token context — by a real chunked prefill, or (default) synthetically: KV blocks
// reserved and counted as cached without computing them, which reads the same bytes in decode;
// then `output_len` greedy decode steps (argmax on the device). Every step is timed on the host
// (until its tokens are on the host), replayed as a device graph where the backend has them (unless
// engine.enforce_eager); the last `profile_steps` steps run op by op instead, timed per stage with
// device marks (Stage in roles/stage_marker.h), with the experts' load recorded: the result's
// "expert_load" holds the routed (token, expert) pairs per layer and global expert id over those
// steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "engine/engine_options.h"

namespace msi::bench {

struct OfflineBenchConfig {
  std::filesystem::path model_dir;  // a checkpoint, or any dir with config.json for dummy weights
  EngineOptions engine;             // device, load_format, hf_overrides, kv_block_size, m, ...
  int64_t batch_size = 8;
  int64_t input_len = 1024;
  int64_t output_len = 32;
  int64_t warmup_steps = 2;  // decode steps not counted in the latency statistics
  int64_t profile_steps = 3;
  bool real_prefill = false;
  bool progress = true;  // a progress line on stderr
  uint64_t seed = 0;
};

// The result object (see docs/perf.md for the fields).
Result<nlohmann::json> run_offline_bench(const OfflineBenchConfig& config);
// A human summary of that object.
std::string offline_bench_table(const nlohmann::json& result);

}  // namespace msi::bench

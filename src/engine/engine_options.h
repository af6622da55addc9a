// EngineOptions: one deployment's knobs — devices, weights, the (M, N, m) placement, the
// transport, batching limits and KV capacity — with their defaults (the CLI flags of generate,
// serve and bench map one to one onto these fields).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/config.h"

namespace msi {

struct EngineOptions {
  std::string device = "cpu";
  std::string load_format = "auto";  // auto: safetensors from the model dir; dummy: random weights
  uint64_t dummy_seed = 0;
  nlohmann::json hf_overrides;       // merged over config.json (null: none)
  int n_attention_workers = 1;       // M
  int n_expert_workers = 1;          // N; 0: every attention worker holds all experts (colocated)
  int n_micro_batches = 1;           // m
  std::string transport = "inproc";  // inproc: threads; shm: one process per worker
  // Disaggregated on devices: attention worker a on attention_devices[a % size], expert worker x on
  // expert_devices[x]; tokens move device to device (peer transport, peer_message.h). Threads
  // (inproc) or one process per worker (shm: CUDA IPC handles exchanged through the rendezvous).
  // Empty: every worker on `device`, tokens through the host mailboxes.
  std::vector<std::string> attention_devices;
  std::vector<std::string> expert_devices;
  // Which expert worker holds which experts (roles/expert_placement.h JSON: per-worker expert lists,
  // replicas allowed, e.g. from `msinfer plan --expert-load`). Null: contiguous ranges.
  nlohmann::json expert_placement;
  int64_t max_batched_tokens = 8192;  // per attention worker and step
  int64_t max_seqs = 256;            // per attention worker and step
  int64_t kv_block_size = 16;
  int64_t kv_n_blocks = 0;           // per attention worker; required (> 0), see kv_blocks_needed()
  int64_t max_model_len = 0;         // 0: the model's max_position_embeddings
  std::chrono::milliseconds peer_timeout{60000};  // every M2N wait
  bool record_timeline = false;      // keep per-worker timelines (for --trace)
  bool enforce_eager = false;        // never replay decode steps as device graphs
};

// Checks options that do not need the model: counts, micro-batches, KV sizes, transport.
Status validate_engine_options(const EngineOptions& options);
// Resolves max_model_len against the config (0 → max_position_embeddings; larger → error).
Result<int64_t> resolve_max_model_len(const ModelConfig& config, const EngineOptions& options);

nlohmann::json engine_options_to_json(const EngineOptions& o);
Result<EngineOptions> engine_options_from_json(const nlohmann::json& j);

}  // namespace msi

// The flags every command that runs a deployment shares (generate, serve; later bench):
// weights, device, the (M, N, m) placement, transport, batching limits. One flag per
// EngineOptions knob, with its default in the help text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/engine_options.h"

namespace msi::cli {

struct DeploymentFlags {
  std::string load_format = "auto";
  std::string device = "cpu";
  std::string hf_overrides;
  int attention_workers = 1;
  std::optional<int> expert_workers;  // unset: 1 on the CPU, 0 (colocated) on a GPU
  int micro_batches = 1;
  std::string transport = "inproc";
  double peer_timeout_s = 60;
  int64_t max_num_seqs = 256;
  int64_t max_model_len = 0;
  int64_t max_num_batched_tokens = 8192;
  int64_t kv_block_size = 16;
  bool enforce_eager = false;
  std::string attention_devices;  // comma list, e.g. cuda:0
  std::string expert_devices;     // comma list, e.g. cuda:1,cuda:2
  std::string expert_placement;   // a placement JSON file
  std::string plan;               // a deployment plan JSON file (msinfer plan --out)
};

void add_deployment_flags(CLI::App* cmd, DeploymentFlags& flags);

// "cuda:0,cuda:1" → {"cuda:0", "cuda:1"} (empty items kept, for the caller to refuse).
std::vector<std::string> split_device_list(const std::string& list);

// EngineOptions from the flags (kv_n_blocks and record_timeline are the caller's).
// InvalidArgument for a malformed --hf-overrides. With --plan, the plan's worker counts,
// micro-batches and sequences per worker replace the flags', and its devices are numbered from
// cuda:0 (attention first, then experts) unless --attention-devices/--expert-devices are given.
Result<EngineOptions> engine_options_from_flags(const DeploymentFlags& flags);

}  // namespace msi::cli

// msinfer profile: measures the performance model's coefficients (planner/hardware_profile.h) on
// the device at hand and returns a HardwareProfile the planner loads (`msinfer plan --profile`).
//
// How: the offline decode benchmark (bench/offline_bench.h) runs the model with its experts on the
// one device over a grid of batch sizes b and context lengths s, and its device-timed stage
// breakdown gives, per layer and step (m = 1, so b_a = b):
//   T_a(b, s) = (attention + router/dispatch + combine + other) / L     → k1(s), k2(s): a least-
//                                                                          squares line in b per s
//   T_e(b)    = experts / L = Σ_e (k3·b_e + k4) = k3·K·b + E·k4         → k3 = slope / K,
//                                                                          k4 = intercept / E
//   and the measured curve of one expert, T_e(b) / E at b_e = b·K/E (ExpertCoeffs::curve), which
//   the model follows where present: the grouped GEMMs are not linear in the batch.
// ("other" — embedding, final norm, LM head, sampling — is spread over the layers.) The link: with
// a peer device, `bench m2n`'s peer-to-peer rounds give the one-way rate per message size, as a
// utilization of the catalog's one-way NVLink bandwidth; without one, the catalog's latency +
// bandwidth estimate. Fit residuals go into the profile's notes.
//
// Blocks for the whole measurement (minutes on a GPU). Not thread-safe (it drives devices).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "engine/engine_options.h"
#include "planner/hardware_profile.h"

namespace msi::bench {

struct ProfileConfig {
  std::filesystem::path model_dir;  // any dir with config.json (dummy weights) or a checkpoint
  EngineOptions engine;             // device, load_format, hf_overrides, kv_block_size
  std::string gpu;                  // catalog name; empty: from the device's name
  std::vector<int64_t> batch_sizes = {32, 64, 128, 256};
  std::vector<int64_t> seq_lens = {1024, 4096};
  int64_t output_len = 8;  // decode steps per point (2 warm-up, 3 profiled, the rest timed)
  int peer_device = -1;    // ≥ 0: measure the link to this CUDA device with bench m2n
  bool progress = true;
};

// A least-squares line y = slope·x + intercept, and its largest relative residual.
struct LineFit {
  double slope = 0, intercept = 0, max_rel_residual = 0;
};
// InvalidArgument with fewer than two distinct x.
Result<LineFit> fit_line(const std::vector<double>& x, const std::vector<double>& y);

// The catalog GPU whose name appears in `device_name` ("cuda:0 (NVIDIA H200)" → H200; the longest
// match wins, so H200 beats H20). NotFound lists the catalog.
Result<std::string> catalog_gpu_of(const std::string& device_name);

// Runs the grid; `points` (may be null) receives every measured point, for the record.
Result<planner::HardwareProfile> run_profile(const ProfileConfig& config, nlohmann::json* points);

}  // namespace msi::bench

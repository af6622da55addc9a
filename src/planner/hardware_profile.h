// HardwareProfile: the performance-model coefficients of one GPU type for one model, as
// `msinfer profile` measures them on the GPU at hand, or as estimate_profile() derives them from
// the GPU catalog (a roofline) for GPUs not at hand. The JSON file round-trips
// (hardware_profile_to_json / hardware_profile_from_json), so a profile can be dumped, edited and
// loaded (`msinfer plan --profile FILE`).
//
// The model (MegaScale-Infer §4.2), per layer and per micro-batch, all times in milliseconds:
//   attention  T_a = k1·b_a + k2   b_a: sequences in the micro-batch; k1, k2 depend on the tensor
//                                  parallel degree tp_a and on the average sequence length
//   experts    T_e = k3·b_e + k4   per routed expert: b_e tokens routed to it; k3, k4 depend on
//   tp_e link       T = bytes / (bandwidth · utilization(message bytes))
// A worker holding g experts takes g·(k3·b_e + k4) (perf_model.h).
//
// JSON layout (format "msinfer-hardware-profile", version 1; "expert[i].curve" optional):
//   {"format": ..., "version": 1, "gpu": "H20", "source": "measured" | "roofline-estimate",
//    "memory_gib": 96, "price": 1.85,                  (optional: override the catalog)
//    "model": {"model_type", "hidden_size", "n_layers", "n_experts", "n_experts_per_tok",
//              "moe_intermediate_size"},               (what the coefficients were taken for)
//    "attention": [{"tp": 1, "seq_len": 1024, "k1_ms": ..., "k2_ms": ...}, ...],
//    "expert": [{"tp": 1, "k3_ms": ..., "k4_ms": ...,
//                "curve": [{"tokens": 8, "ms": ...}, ...]}, ...],
//    "link": {"bandwidth_gbs": 50, "utilization": [{"bytes": 4096, "utilization": 0.2}, ...]},
//    "nvlink": {...same as link...},                   (optional: absent or bandwidth 0 = none)
//    "notes": "..."}                                   (optional, free text)
//
// Values only; thread-compatible. Nothing here blocks except load_hardware_profile (file read).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/config.h"
#include "planner/gpu_catalog.h"

namespace msi::planner {

struct AttentionCoeffs {
  int tp = 1;          // tp_a
  double seq_len = 0;  // average context length the coefficients were taken at (tokens)
  double k1_ms = 0;    // per sequence of the micro-batch, per layer
  double k2_ms = 0;    // per layer (weight reads, launches)
};

struct ExpertCurvePoint {
  double tokens = 0;  // b_e: tokens routed to the expert
  double ms = 0;      // one expert's time per layer at b_e
};

struct ExpertCoeffs {
  int tp = 1;        // tp_e
  double k3_ms = 0;  // per token routed to the expert, per layer
  double k4_ms = 0;  // per expert and layer (its weight reads, launches)
  // Optional, measured (`msinfer profile`): one expert's time at several b_e, sorted by tokens.
  // Where present, T_e follows it (piecewise-linear; flat below the first point, slope k3 beyond
  // the last) instead of the line: grouped GEMMs change tile shapes with the batch, so the
  // measured time is not linear in b_e.
  std::vector<ExpertCurvePoint> curve;
};

struct UtilizationPoint {
  double bytes = 0;        // message size
  double utilization = 0;  // achieved / peak bandwidth, in (0, 1]
};

// One link of a GPU (the scale-out NIC, or NVLink). Bandwidth is one direction, per GPU.
struct LinkProfile {
  double bandwidth_gbs = 0;                   // 0: the link does not exist
  std::vector<UtilizationPoint> utilization;  // sorted by bytes; piecewise-linear in log(bytes)

  // Utilization for messages of `message_bytes`; clamped to the first/last point. Requires a
  // non-empty curve.
  double utilization_at(double message_bytes) const;
  // Milliseconds to move `bytes` in messages of `message_bytes` (0 bytes: 0 ms). Requires
  // bandwidth_gbs > 0.
  double transfer_ms(double bytes, double message_bytes) const;
};

// What a profile was taken for; the planner refuses a profile of another model.
struct ProfileModel {
  std::string model_type;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_experts = 0;
  int64_t n_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
};
ProfileModel profile_model_of(const ModelConfig& config);

struct HardwareProfile {
  std::string gpu;                  // catalog name, or any name with memory_gib + price
  std::string source = "measured";  // "measured" | "roofline-estimate"
  double memory_gib = 0;            // 0: take the catalog's
  double price = 0;                 // 0: take the catalog's
  ProfileModel model;
  std::vector<AttentionCoeffs> attention;  // one or more (tp, seq_len) points
  std::vector<ExpertCoeffs> expert;        // one per tp
  LinkProfile link;                        // scale-out network (what disaggregated M2N uses)
  LinkProfile nvlink;                      // within a node; bandwidth 0: none
  std::string notes;

  // k1/k2 at `tp` for `seq_len`: linear interpolation between the two nearest measured lengths,
  // linear extrapolation beyond them (clamped at 0), the single point if only one. NotFound names
  // the tp values the profile has.
  Result<AttentionCoeffs> attention_at(int tp, double seq_len) const;
  Result<ExpertCoeffs> expert_at(int tp) const;
  std::vector<int> attention_tps() const;  // sorted, unique
  std::vector<int> expert_tps() const;     // sorted, unique
};

nlohmann::json hardware_profile_to_json(const HardwareProfile& profile);
// Validates every field; errors name the field ("profile field 'attention[2].k1_ms' must be a
// number >= 0, got string").
Result<HardwareProfile> hardware_profile_from_json(const nlohmann::json& j);
// Reads and parses a profile file; errors name the file.
Result<HardwareProfile> load_hardware_profile(const std::filesystem::path& path);

// InvalidArgument naming the first field where the profile's model differs from `config`.
Status check_profile_model(const HardwareProfile& profile, const ModelConfig& config);

// The roofline estimate's knobs. Efficiencies are the fraction of the spec-sheet peak that decode
// kernels reach: memory_efficiency for streaming weights and KV (well-tuned decode kernels reach
// 80-90% of peak HBM bandwidth), compute_efficiency for large bf16 GEMMs (65-75% of dense peak is
// typical for cuBLAS at decode shapes). Overheads are kernel launches and small ops per layer.
struct EstimateOptions {
  std::vector<int> tps = {1, 2, 4, 8};
  std::vector<double> seq_lens = {256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
  double memory_efficiency = 0.8;
  double compute_efficiency = 0.7;
  double attention_overhead_us = 30;  // per layer: norms, rope, router, top-k, launches
  double expert_overhead_us = 10;     // per expert and layer: activation, gate-weighting
  double collective_latency_us = 10;  // per tensor-parallel collective
  double network_latency_us = 3;      // per message on the NIC (RDMA write + completion)
  double nvlink_latency_us = 1;       // per message over NVLink
  // k1..k4 are the chord of the roofline between batch 1 and these anchors: exact at both ends,
  // never optimistic between them (the roofline is convex in the batch), optimistic beyond.
  int64_t attention_anchor = 256;  // sequences per micro-batch
  int64_t expert_anchor = 2048;    // tokens per expert
};

// A roofline profile: per kernel group, time = max(bytes / (HBM·memory_efficiency),
// FLOPs / (bf16·compute_efficiency)), plus overheads and tensor-parallel collectives over the
// intra-node link; attention reads the non-expert weights once per micro-batch and each
// sequence's KV cache; an expert reads its weights once per micro-batch. Link curves come from a
// latency + bandwidth model: utilization(s) = s / (s + latency·bandwidth). Never fails: every
// input is a catalog entry and a parsed config.
HardwareProfile estimate_profile(const GpuSpec& gpu, const ModelConfig& config,
                                 const EstimateOptions& options = {});

// The latency + bandwidth utilization curve, sampled every factor 4 from 256 B to 1 GiB.
LinkProfile latency_bandwidth_link(double bandwidth_gbs, double latency_us);

}  // namespace msi::planner

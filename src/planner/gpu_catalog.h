// GpuCatalog: the GPUs the planner knows without measuring them — memory, HBM bandwidth, dense
// bf16 tensor throughput, NVLink, PCIe and NIC bandwidth per GPU, and a price normalized as in
// MegaScale-Infer's Table 3 (L20 = 1.00). Each entry cites its sources; prices the paper does not
// give are estimates and say so (`price_is_estimate`). The roofline estimate
// (hardware_profile.h: estimate_profile) turns an entry into performance-model coefficients.
//
// Owns a static, immutable table; every function is thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace msi::planner {

struct GpuSpec {
  std::string name;        // "H20"; lookups ignore case
  double memory_gib = 0;   // device memory as marketed (80 GB → 80)
  double hbm_tbs = 0;      // peak memory bandwidth, TB/s
  double bf16_tflops = 0;  // dense bf16 tensor-core peak (not the "with sparsity" figure)
  double nvlink_gbs = 0;   // NVLink per GPU as NVIDIA quotes it (both directions); 0: none
  double pcie_gbs = 0;     // PCIe host link, one direction (Gen4 x16 ≈ 32, Gen5 x16 ≈ 64)
  double nic_gbs = 0;      // scale-out network per GPU, one direction (400 Gb/s → 50 GB/s)
  double price = 0;        // normalized price per GPU (Table 3: L20 = 1.00)
  bool price_is_estimate = false;  // true: not from Table 3 (see `source`)
  std::string source;              // where each number comes from

  // NOTE: NVIDIA's NVLink figure counts both directions; a one-way transfer sees half of it.
  double nvlink_one_way_gbs() const { return nvlink_gbs / 2; }
  // The link tensor-parallel collectives inside one node use: NVLink when present, else PCIe.
  double intra_node_gbs() const { return nvlink_gbs > 0 ? nvlink_one_way_gbs() : pcie_gbs; }
};

// Every known GPU, in a fixed order (H100, H200, H20, H800, A800, A100, L40S, L20, B200).
const std::vector<GpuSpec>& gpu_catalog();

// The entry named `name`, ignoring case ("h20" finds H20). NotFound lists the known GPUs.
Result<GpuSpec> find_gpu(std::string_view name);

// "H20,L40S" → both entries, in order, without duplicates. InvalidArgument on an empty list or
// an empty name; NotFound (listing the known GPUs) on an unknown one.
Result<std::vector<GpuSpec>> find_gpus(std::string_view comma_separated);

// "H100, H200, H20, ..." — for error messages and help texts.
std::string known_gpu_names();

}  // namespace msi::planner

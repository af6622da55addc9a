// The GPU catalog. Sources, cited per entry:
//  [T3]  MegaScale-Infer (Zhu et al., SIGCOMM'25, arXiv 2504.02263), §4.3 Table 3: price per chip
//        normalized to L20 = 1.00 — L20 1.00, L40S 1.08, H20 1.85, A800 2.26, H800 5.28 — with
//        memory, bandwidth and TFLOPS columns (48/864/119.5, 48/864/362, 96/4096/148,
//        80/2039/312, 80/3430.4/989; the paper writes bandwidth with 1 TB/s = 1024 GB/s).
//        NOTE: the full paper text was not at hand; these values come from a transcription of
//        Table 3 (they agree with the vendor columns below). Prices not in Table 3 are estimates,
//        flagged price_is_estimate, and `msinfer plan --price NAME=VALUE` overrides any price.
//  Vendor spec sheets for memory, bandwidth, dense bf16 and NVLink (cited per entry). NIC
//  bandwidth is the usual per-GPU scale-out NIC of the platform (DGX/HGX reference designs:
//  one 400 Gb/s ConnectX-7 per Hopper/Blackwell GPU, one 200 Gb/s HDR per Ampere GPU; PCIe L-series
//  servers are commonly built with 200 Gb/s per GPU) — a deployment choice, not a chip property.
#include "planner/gpu_catalog.h"

#include <algorithm>
#include <cctype>

namespace msi::planner {
namespace {

std::vector<GpuSpec> make_catalog() {
  std::vector<GpuSpec> c;
  // name, GiB, TB/s, TFLOPS, NVLink, PCIe, NIC, price, estimate?, source
  c.push_back({"H100", 80, 3.35, 989, 900, 64, 50, 5.28, true,
               "NVIDIA H100 Tensor Core GPU datasheet, SXM5 column (80 GB HBM3, 3.35 TB/s, "
               "989 TFLOPS bf16 dense / 1979 sparse, NVLink 900 GB/s); NIC: DGX H100, one "
               "400 Gb/s ConnectX-7 per GPU. Price: estimate, not in Table 3 — set equal to H800 "
               "(5.28, [T3]), the same SXM5 board with NVLink cut to 400 GB/s"});
  c.push_back({"H200", 141, 4.8, 989, 900, 64, 50, 6.34, true,
               "NVIDIA H200 Tensor Core GPU datasheet, SXM column (141 GB HBM3e, 4.8 TB/s, "
               "989 TFLOPS bf16 dense, NVLink 900 GB/s); NIC: HGX H200, 400 Gb/s per GPU. Price: "
               "estimate, not in Table 3 — 1.2 x H800 (H200 rents at a ~20% premium over H100)"});
  c.push_back({"H20", 96, 4.0, 148, 900, 64, 50, 1.85, false,
               "NVIDIA HGX H20 specification (96 GB HBM3, 4.0 TB/s, 148 TFLOPS bf16 dense, NVLink "
               "900 GB/s); NIC: 400 Gb/s per GPU as on HGX H100; price 1.85 [T3]"});
  c.push_back({"H800", 80, 3.35, 989, 400, 64, 50, 5.28, false,
               "NVIDIA H800 SXM5 (the H100 SXM5 with NVLink cut to 400 GB/s: 80 GB HBM3, "
               "3.35 TB/s, 989 TFLOPS bf16 dense); NIC: 400 Gb/s per GPU; price 5.28 [T3]"});
  c.push_back({"A800", 80, 2.039, 312, 400, 32, 25, 2.26, false,
               "NVIDIA A800 SXM4 80GB (the A100 SXM4 80GB with NVLink cut to 400 GB/s: 80 GB "
               "HBM2e, 2.039 TB/s, 312 TFLOPS bf16 dense); NIC: DGX A100, one 200 Gb/s HDR per "
               "GPU; price 2.26 [T3]"});
  c.push_back({"A100", 80, 2.039, 312, 600, 32, 25, 2.26, true,
               "NVIDIA A100 Tensor Core GPU datasheet, SXM4 80GB column (80 GB HBM2e, 2.039 TB/s, "
               "312 TFLOPS bf16 dense / 624 sparse, NVLink 600 GB/s); NIC: DGX A100, 200 Gb/s HDR "
               "per GPU. Price: estimate, not in Table 3 — set equal to A800 (2.26, [T3])"});
  c.push_back({"L40S", 48, 0.864, 362, 0, 32, 25, 1.08, false,
               "NVIDIA L40S datasheet (48 GB GDDR6, 864 GB/s, 362.05 TFLOPS bf16 dense / 733 "
               "sparse, no NVLink, PCIe Gen4 x16 64 GB/s both ways); NIC: 200 Gb/s per GPU "
               "(typical L40S server); price 1.08 [T3]"});
  c.push_back({"L20", 48, 0.864, 119.5, 0, 32, 25, 1.00, false,
               "NVIDIA L20 specification (48 GB GDDR6, 864 GB/s, 119.5 TFLOPS bf16 dense, no "
               "NVLink, PCIe Gen4 x16); NIC: 200 Gb/s per GPU; price 1.00, the reference of [T3]"});
  c.push_back({"B200", 180, 8.0, 2250, 1800, 64, 50, 9.0, true,
               "NVIDIA HGX B200 (180 GB HBM3e, 8 TB/s, 2.25 PFLOPS bf16 dense / 4.5 sparse at "
               "1000 W, NVLink 5 1.8 TB/s); NIC: DGX B200, one 400 Gb/s ConnectX-7 per GPU. "
               "Price: estimate, not in Table 3 — ~1.7 x H800 (B200 rental vs H100 rental)"});
  return c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::vector<GpuSpec>& gpu_catalog() {
  static const std::vector<GpuSpec> kCatalog = make_catalog();
  return kCatalog;
}

std::string known_gpu_names() {
  std::string out;
  for (const GpuSpec& g : gpu_catalog()) out += (out.empty() ? "" : ", ") + g.name;
  return out;
}

Result<GpuSpec> find_gpu(std::string_view name) {
  const std::string key = lower(trim(name));
  for (const GpuSpec& g : gpu_catalog()) {
    if (lower(g.name) == key) return g;
  }
  return error(StatusCode::kNotFound, "unknown GPU '{}' (known GPUs: {})", name, known_gpu_names());
}

Result<std::vector<GpuSpec>> find_gpus(std::string_view comma_separated) {
  std::vector<GpuSpec> out;
  if (trim(comma_separated).empty()) {
    return error(StatusCode::kInvalidArgument, "empty GPU list (known GPUs: {})",
                 known_gpu_names());
  }
  size_t start = 0;
  while (start <= comma_separated.size()) {
    const size_t comma = std::min(comma_separated.find(',', start), comma_separated.size());
    const std::string_view item = trim(comma_separated.substr(start, comma - start));
    if (item.empty()) {
      return error(StatusCode::kInvalidArgument, "empty GPU name in '{}'", comma_separated);
    }
    MSI_ASSIGN_OR_RETURN(GpuSpec g, find_gpu(item));
    const bool seen =
        std::any_of(out.begin(), out.end(), [&](const GpuSpec& o) { return o.name == g.name; });
    if (!seen) out.push_back(std::move(g));
    start = comma + 1;
  }
  return out;
}

}  // namespace msi::planner

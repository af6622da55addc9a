#include "bench/hardware_profiler.h"

#include <algorithm>
#include <cmath>

#include "backend/registry.h"
#include "bench/m2n_bench.h"
#include "bench/offline_bench.h"
#include "model/config.h"
#include "planner/gpu_catalog.h"

namespace msi::bench {
namespace {

using json = nlohmann::json;

// Per-step stage times (ms) of a bench result, by stage name.
Result<double> stage_ms(const json& result, const std::string& name) {
  for (const json& s : result.at("profile").at("stages")) {
    if (s.at("stage") == name) return s.at("ms").get<double>();
  }
  return error(StatusCode::kInternal, "the bench result has no '{}' stage", name);
}

}  // namespace

Result<LineFit> fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2) {
    return error(StatusCode::kInvalidArgument, "a line needs at least two points, got {}",
                 x.size());
  }
  const double n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double den = n * sxx - sx * sx;
  if (den <= 0) return error(StatusCode::kInvalidArgument, "a line needs two distinct x values");
  LineFit f;
  f.slope = (n * sxy - sx * sy) / den;
  f.intercept = (sy - f.slope * sx) / n;
  for (size_t i = 0; i < x.size(); ++i) {
    const double pred = f.slope * x[i] + f.intercept;
    if (y[i] != 0)
      f.max_rel_residual = std::max(f.max_rel_residual, std::abs(pred - y[i]) / std::abs(y[i]));
  }
  return f;
}

Result<std::string> catalog_gpu_of(const std::string& device_name) {
  std::string best, known;
  for (const planner::GpuSpec& g : planner::gpu_catalog()) {
    known += (known.empty() ? "" : ", ") + g.name;
    if (device_name.find(g.name) != std::string::npos && g.name.size() > best.size()) best = g.name;
  }
  if (best.empty()) {
    return error(StatusCode::kNotFound,
                 "cannot tell which catalog GPU '{}' is (known: {}); give --gpu", device_name,
                 known);
  }
  return best;
}

Result<planner::HardwareProfile> run_profile(const ProfileConfig& cfg, json* points) {
  if (cfg.batch_sizes.size() < 2)
    return error(StatusCode::kInvalidArgument, "--batch-sizes needs at least two sizes");
  if (cfg.seq_lens.empty())
    return error(StatusCode::kInvalidArgument, "--seq-lens needs at least one length");
  for (int64_t b : cfg.batch_sizes) {
    if (b < 1)
      return error(StatusCode::kInvalidArgument, "batch sizes must be positive, got {}", b);
  }
  for (int64_t s : cfg.seq_lens) {
    if (s < 1)
      return error(StatusCode::kInvalidArgument, "sequence lengths must be positive, got {}", s);
  }
  const json* overrides = cfg.engine.hf_overrides.is_null() ? nullptr : &cfg.engine.hf_overrides;
  MSI_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(cfg.model_dir, overrides));

  planner::HardwareProfile p;
  p.source = "measured";
  p.model = planner::profile_model_of(config);
  // The device, once: its name picks the catalog entry, its index the link's sending side.
  Device device;
  std::string device_name;
  {
    MSI_ASSIGN_OR_RETURN(auto probe, make_backend(cfg.engine.device));
    device = probe->device();
    device_name = probe->name();
  }
  if (!cfg.gpu.empty()) {
    p.gpu = cfg.gpu;
  } else if (device.kind == DeviceKind::kCpu) {
    p.gpu = "cpu";  // not a catalog GPU: the profile carries its own memory and price
  } else {
    MSI_ASSIGN_OR_RETURN(p.gpu, catalog_gpu_of(device_name));
  }
  Result<planner::GpuSpec> spec = planner::find_gpu(p.gpu);
  if (!spec.is_ok()) {  // a device outside the catalog (the CPU): the profile carries its own
    p.memory_gib = 1;
    p.price = 1;
  }

  const double L = static_cast<double>(config.n_layers);
  const double K = static_cast<double>(config.n_experts_per_tok),
               E = static_cast<double>(config.n_experts);
  std::vector<double> expert_b, expert_ms;
  std::string notes = "measured by msinfer profile on " + cfg.engine.device + ";";
  if (points) *points = json::array();
  for (int64_t s : cfg.seq_lens) {
    std::vector<double> b_of, ta_of;
    for (int64_t b : cfg.batch_sizes) {
      OfflineBenchConfig bc;
      bc.model_dir = cfg.model_dir;
      bc.engine = cfg.engine;
      bc.engine.n_expert_workers = 0;
      bc.engine.n_micro_batches = 1;
      bc.engine.expert_devices.clear();
      bc.engine.attention_devices.clear();
      bc.batch_size = b;
      bc.input_len = s;
      bc.output_len = std::max<int64_t>(cfg.output_len, 6);
      bc.progress = cfg.progress;
      Result<json> r = run_offline_bench(bc);
      if (!r.is_ok())
        return r.status().with_context(fmt::format("profiling batch {} at context {}", b, s));
      double attention = 0;
      for (const char* stage : {"attention", "router_dispatch", "combine", "other"}) {
        MSI_ASSIGN_OR_RETURN(double ms, stage_ms(*r, stage));
        attention += ms;
      }
      MSI_ASSIGN_OR_RETURN(double experts, stage_ms(*r, "experts"));
      b_of.push_back(static_cast<double>(b));
      ta_of.push_back(attention / L);
      expert_b.push_back(static_cast<double>(b));
      expert_ms.push_back(experts / L);
      if (points) {
        points->push_back({{"batch", b},
                           {"seq_len", s},
                           {"t_a_ms_per_layer", attention / L},
                           {"t_e_ms_per_layer", experts / L},
                           {"step_ms", r->at("decode").at("step_ms").at("median")}});
      }
    }
    MSI_ASSIGN_OR_RETURN(LineFit fa, fit_line(b_of, ta_of));
    p.attention.push_back(
        {1, static_cast<double>(s), std::max(fa.slope, 0.0), std::max(fa.intercept, 0.0)});
    notes +=
        fmt::format(" attention at {} tokens: max residual {:.1f}%;", s, 100 * fa.max_rel_residual);
  }
  MSI_ASSIGN_OR_RETURN(LineFit fe, fit_line(expert_b, expert_ms));
  planner::ExpertCoeffs ec{1, std::max(fe.slope / K, 0.0), std::max(fe.intercept / E, 0.0), {}};
  // The measured curve too (one expert at b_e = b·K/E tokens; the mean over context lengths, which
  // do not touch the experts): grouped GEMMs switch tile shapes, so it is not a line.
  for (int64_t b : cfg.batch_sizes) {
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < expert_b.size(); ++i) {
      if (expert_b[i] == static_cast<double>(b)) {
        sum += expert_ms[i];
        ++n;
      }
    }
    ec.curve.push_back({static_cast<double>(b) * K / E, sum / n / E});
  }
  std::sort(ec.curve.begin(), ec.curve.end(),
            [](const auto& a, const auto& b) { return a.tokens < b.tokens; });
  ec.curve.erase(std::unique(ec.curve.begin(), ec.curve.end(),
                             [](const auto& a, const auto& b) { return a.tokens == b.tokens; }),
                 ec.curve.end());
  p.expert.push_back(ec);
  notes += fmt::format(" experts: the line's max residual {:.1f}% (the curve is used);",
                       100 * fe.max_rel_residual);

  // The link.
  const double one_way = spec.is_ok() ? spec->nvlink_one_way_gbs() : 0.0;
  if (cfg.peer_device >= 0) {
    if (one_way <= 0)
      return error(StatusCode::kInvalidArgument, "--peer-device needs a catalog GPU with NVLink");
    M2NBenchConfig mc;
    mc.send_device = device.index;
    mc.recv_device = cfg.peer_device;
    mc.transports = {"p2p"};
    mc.decode_tokens.clear();
    mc.progress = cfg.progress;
    Result<json> m = run_m2n_bench(mc);
    if (!m.is_ok()) return m.status().with_context("measuring the link with bench m2n");
    p.link.bandwidth_gbs = one_way;
    for (const json& c : m->at("cases")) {
      if (c.at("kind") != "size" || !c.at("transports").contains("p2p")) continue;
      // One round moves the message both ways in turn: the one-way rate is the round's throughput.
      const double gbps = c.at("transports").at("p2p").at("gbps").get<double>();
      p.link.utilization.push_back(
          {c.at("bytes").get<double>(), std::clamp(gbps / one_way, 1e-4, 1.0)});
    }
    std::sort(p.link.utilization.begin(), p.link.utilization.end(),
              [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
    if (p.link.utilization.empty())
      return error(StatusCode::kInternal, "bench m2n returned no p2p cases");
    notes += fmt::format(" link: bench m2n p2p to cuda:{}, as a utilization of {} GB/s one way;",
                         cfg.peer_device, one_way);
  } else if (one_way > 0) {
    p.link = planner::latency_bandwidth_link(one_way, 1.0);
    notes +=
        " link: not measured (no --peer-device): the catalog's NVLink, latency + bandwidth model;";
  } else {
    p.link = planner::latency_bandwidth_link(25.0, 10.0);
    notes += " link: not measured: a nominal 25 GB/s, 10 us link;";
  }
  p.notes = notes;
  return p;
}

}  // namespace msi::bench

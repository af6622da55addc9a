#include "bench/m2n_bench.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "bench/report.h"

// NOTE: the one #if on CUDA outside backend/: the GPU transports (comm/gpu, msinfer_comm_gpu)
// exist only in MSI_CUDA builds, and the CPU build must still offer the command and say why it
// cannot run.
#if MSI_CUDA
#include "comm/gpu/m2n_gpu.h"
#endif

namespace msi::bench {
namespace {

constexpr size_t kHeadlineBytes = 256 * 1024;

struct Case {
  std::string label;
  std::string kind;  // "size" or "decode"
  size_t bytes = 0;
  int tokens = 0, hidden = 0, top_k = 0;
};

std::string size_label(size_t bytes) {
  if (bytes % (1024 * 1024) == 0) return fmt::format("{}MiB", bytes / (1024 * 1024));
  if (bytes % 1024 == 0) return fmt::format("{}KiB", bytes / 1024);
  return fmt::format("{}B", bytes);
}

[[maybe_unused]] std::vector<Case> make_cases(const M2NBenchConfig& c) {
  std::vector<Case> cases;
  std::vector<size_t> sizes = c.sizes;
  if (sizes.empty()) {
    for (size_t b = 4096; b <= 8u * 1024 * 1024; b *= 2) sizes.push_back(b);
  }
  for (size_t b : sizes) cases.push_back({size_label(b), "size", b});
  for (int t : c.decode_tokens) {
    for (int h : c.decode_hidden) {
      for (int k : c.decode_topk) {
        const size_t b = decode_message_bytes(t, h, k, c.n_receivers);
        cases.push_back({fmt::format("t{}·k{}/{}·h{}", t, k, c.n_receivers, h), "decode", b, t, h, k});
      }
    }
  }
  return cases;
}

[[maybe_unused]] nlohmann::json config_json(const M2NBenchConfig& c) {
  return {{"send_device", c.send_device}, {"recv_device", c.recv_device}, {"n_senders", c.n_senders},
          {"n_receivers", c.n_receivers}, {"warmup", c.warmup}, {"iters", c.iters},
          {"timeout_ms", c.timeout_ms}, {"p2p_blocks_per_pair", c.p2p_blocks_per_pair},
          {"link_gbps", c.link_gbps}, {"transports", c.transports}};
}

// Adds "headline": each non-NCCL transport against NCCL at 256 KiB per pair.
[[maybe_unused]] void add_headline(nlohmann::json& result) {
  for (const auto& cs : result["cases"]) {
    if (cs["kind"] != "size" || cs["bytes"].get<size_t>() != kHeadlineBytes) continue;
    const auto& t = cs["transports"];
    if (!t.contains("nccl")) return;
    nlohmann::json h = {{"bytes_per_pair", kHeadlineBytes}};
    for (const auto& [name, v] : t.items()) {
      if (name == "nccl") continue;
      h[name] = {{"median_latency_reduction_pct",
                  100.0 * (1.0 - v["median_us"].get<double>() / t["nccl"]["median_us"].get<double>())},
                 {"throughput_x", v["gbps"].get<double>() / t["nccl"]["gbps"].get<double>()}};
    }
    result["headline"] = h;
    return;
  }
}

#if MSI_CUDA

using comm::gpu::GpuM2N;
using comm::gpu::GpuTransport;

Result<nlohmann::json> measure(GpuM2N& m2n, const M2NBenchConfig& c, const Case& cs) {
  std::vector<float> us(static_cast<size_t>(std::max(c.warmup, c.iters)));
  auto rounds = [&](int n) -> Status {
    for (int i = 0; i < n; i += comm::gpu::kMaxRoundsPerCall) {
      MSI_RETURN_IF_ERROR(
          m2n.run_rounds(cs.bytes, us.data() + i, std::min(comm::gpu::kMaxRoundsPerCall, n - i)));
    }
    return Status::ok();
  };
  MSI_RETURN_IF_ERROR(rounds(c.warmup));
  MSI_RETURN_IF_ERROR(rounds(c.iters));
  std::vector<double> sorted(us.begin(), us.begin() + c.iters);
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : sorted) sum += v;
  const double mean = sum / static_cast<double>(sorted.size());
  const double moved = 2.0 * c.n_senders * c.n_receivers * static_cast<double>(cs.bytes);
  return nlohmann::json{{"median_us", percentile(sorted, 50)},
                        {"p99_us", percentile(sorted, 99)},
                        {"min_us", sorted.front()},
                        {"max_us", sorted.back()},
                        {"mean_us", mean},
                        {"gbps", moved / (mean * 1e-6) / 1e9},
                        {"floor_us", moved / (c.link_gbps * 1e9) * 1e6}};
}

Result<nlohmann::json> run_gpu(const M2NBenchConfig& c) {
  const std::vector<Case> cases = make_cases(c);
  nlohmann::json result = {{"config", config_json(c)},
                           {"timing",
                            "CUDA events on the send device's stream around each round; rounds enqueued "
                            "behind a gate and run back to back"},
                           {"decode_bytes_formula", "ceil(tokens*top_k/n_receivers)*hidden*2"},
                           {"cases", nlohmann::json::array()}};
  size_t max_bytes = 16;
  for (const Case& cs : cases) {
    max_bytes = std::max(max_bytes, cs.bytes);
    result["cases"].push_back({{"label", cs.label}, {"kind", cs.kind}, {"bytes", cs.bytes},
                               {"transports", nlohmann::json::object()}});
    if (cs.kind == "decode") {
      result["cases"].back()["tokens"] = cs.tokens;
      result["cases"].back()["hidden"] = cs.hidden;
      result["cases"].back()["top_k"] = cs.top_k;
    }
  }
  comm::gpu::GpuM2NConfig g;
  g.send_device = c.send_device;
  g.recv_device = c.recv_device;
  g.n_senders = c.n_senders;
  g.n_receivers = c.n_receivers;
  g.max_bytes = max_bytes;
  g.p2p_blocks_per_pair = c.p2p_blocks_per_pair;
  g.timeout = std::chrono::milliseconds(c.timeout_ms);
  const size_t n_steps = cases.size() * c.transports.size();
  size_t step = 0;
  // A transport that fails (set-up, or a round that times out) is reported under "errors" and
  // skipped; the others still run. The bench fails only when every transport did.
  for (const std::string& name : c.transports) {
    MSI_ASSIGN_OR_RETURN(GpuTransport t, comm::gpu::parse_gpu_transport(name));
    auto m2n = comm::gpu::make_gpu_m2n(t, g);  // outside any timing
    if (!m2n.is_ok()) {
      result["errors"][name] = m2n.status().to_string();
      step += cases.size();
      continue;
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      if (c.progress) {
        std::cerr << fmt::format("\r[bench m2n] {:<5} {:<22} {:>4}/{}", name, cases[i].label, ++step, n_steps)
                  << std::flush;
      }
      auto r = measure(**m2n, c, cases[i]);
      if (!r.is_ok()) {
        result["errors"][name] = fmt::format("at {}: {}", cases[i].label, r.status().to_string());
        step += cases.size() - i - 1;
        break;
      }
      result["cases"][i]["transports"][name] = *r;
    }
  }
  if (c.progress) std::cerr << "\n";
  if (result.contains("errors") && result["errors"].size() == c.transports.size()) {
    return Status(StatusCode::kUnavailable, "every transport failed: " + result["errors"].dump());
  }
  add_headline(result);
  return result;
}

#endif  // MSI_CUDA

}  // namespace

Result<size_t> parse_byte_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit = text.substr(i);
  if (i == 0 || i > 15) return Status(StatusCode::kInvalidArgument, "not a byte size: '" + text + "'");
  const size_t n = std::stoull(text.substr(0, i));
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  size_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "K" || unit == "KB" || unit == "KIB") scale = 1024;
  if (unit == "M" || unit == "MB" || unit == "MIB") scale = 1024 * 1024;
  if (unit == "G" || unit == "GB" || unit == "GIB") scale = 1024 * 1024 * 1024;
  if (scale == 0) return Status(StatusCode::kInvalidArgument, "not a byte size: '" + text + "' (e.g. 4K, 8M)");
  return n * scale;
}

Result<std::vector<size_t>> parse_byte_sizes(const std::string& text) {
  std::vector<size_t> sizes;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    MSI_ASSIGN_OR_RETURN(size_t b, parse_byte_size(text.substr(start, comma - start)));
    if (b == 0 || b % 16 != 0) return error(StatusCode::kInvalidArgument, "size {}: need a positive multiple of 16", b);
    sizes.push_back(b);
    start = comma + 1;
  }
  return sizes;
}

size_t decode_message_bytes(int tokens, int hidden, int top_k, int n_receivers) {
  const size_t rows = (static_cast<size_t>(tokens) * top_k + n_receivers - 1) / n_receivers;
  return (rows * static_cast<size_t>(hidden) * 2 + 15) / 16 * 16;
}

Result<nlohmann::json> run_m2n_bench(const M2NBenchConfig& c) {
  if (c.n_senders < 1 || c.n_receivers < 1) return Status(StatusCode::kInvalidArgument, "--senders and --receivers must be >= 1");
  if (c.iters < 1 || c.warmup < 0) return Status(StatusCode::kInvalidArgument, "--iters must be >= 1 and --warmup >= 0");
  if (c.transports.empty()) return Status(StatusCode::kInvalidArgument, "--transports is empty");
#if MSI_CUDA
  return run_gpu(c);
#else
  return Status(StatusCode::kUnavailable,
                "msinfer was built without CUDA (configure with -DMSI_CUDA=ON): bench m2n needs GPUs");
#endif
}

std::string m2n_bench_table(const nlohmann::json& result) {
  const auto& cfg = result["config"];
  const auto transports = cfg["transports"].get<std::vector<std::string>>();
  std::string out = fmt::format("M2N round trips: {} senders on cuda:{} ↔ {} receivers on cuda:{}, {} rounds\n",
                                cfg["n_senders"].get<int>(), cfg["send_device"].get<int>(),
                                cfg["n_receivers"].get<int>(), cfg["recv_device"].get<int>(),
                                cfg["iters"].get<int>());
  out += "round time in µs (median / p99), throughput in GB/s (both directions), floor at the link rate\n";
  out += fmt::format("{:<22}{:>10}", "message/pair", "floor_us");
  for (const auto& t : transports) out += fmt::format("{:>22}{:>8}", t + " med/p99", "GB/s");
  out += "\n";
  for (const auto& cs : result["cases"]) {
    out += fmt::format("{:<22}{:>10.2f}", cs["label"].get<std::string>(),
                       cs["transports"].empty() ? 0.0 : cs["transports"].begin().value()["floor_us"].get<double>());
    for (const auto& t : transports) {
      if (!cs["transports"].contains(t)) {
        out += fmt::format("{:>22}{:>8}", "-", "-");
        continue;
      }
      const auto& v = cs["transports"][t];
      out += fmt::format("{:>22}{:>8.1f}",
                         fmt::format("{:.1f} / {:.1f}", v["median_us"].get<double>(), v["p99_us"].get<double>()),
                         v["gbps"].get<double>());
    }
    out += "\n";
  }
  if (result.contains("errors")) {
    for (const auto& [name, e] : result["errors"].items()) out += fmt::format("{} failed: {}\n", name, e.get<std::string>());
  }
  if (result.contains("headline")) {
    out += fmt::format("at {} per pair, vs nccl:\n", size_label(result["headline"]["bytes_per_pair"].get<size_t>()));
    for (const auto& [name, v] : result["headline"].items()) {
      if (name == "bytes_per_pair") continue;
      out += fmt::format("  {:<5} median latency {:+.1f}%, throughput {:.2f}×\n", name,
                         -v["median_latency_reduction_pct"].get<double>(), v["throughput_x"].get<double>());
    }
  }
  return out;
}

}  // namespace msi::bench

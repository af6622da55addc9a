// moe_ops_bench: one MoE layer's grouped expert path — moe_align → moe_gate_up → moe_down →
// moe_combine — on a Backend, for Mixtral-8x7B and Qwen3-30B-A3B layer shapes at n = 1, 8, 64, 256
// tokens (decode; --tokens 2048 4096 for prefill, where the GEMMs are compute-bound) with
// uniformly random top-k routing (fixed seed), against the roofline ceilings measured in the same
// run (bench/ceilings.h). The table gives both fractions: of HBM bandwidth (what bounds decode) and
// of the bf16 tensor throughput (what bounds prefill), the latter also per GEMM.
//
// Each repetition flushes L2 (a copy of a buffer larger than it) outside the timed region, as a
// real decode step meets each layer's weights cold. Timed with the backend's DeviceClock: the
// chain and every stage; best and median over --reps.
//   bytes  = weights of the experts with ≥ 1 token (w13 + w2) + activations
//            (x read, act written + read, y written + read, out read + written)
//   flops  = 2 · rows · (2 · inter · hidden + hidden · inter), rows = n · top_k
// "gemm" figures count gate_up + down only: their time, the weights, x, act and y written.
//
//   build-moe/bench/moe_ops_bench [--device cuda:0] [--json] [--reps 30] [--model all]
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "bench/ceilings.h"

namespace msi {
namespace {

struct LayerShape {
  std::string name;
  int64_t hidden, inter, n_experts, top_k;
};

struct Stats {
  double best = 0.0, median = 0.0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return Stats{v.front(), v[v.size() / 2]};
}

nlohmann::json stats_json(const Stats& s) { return {{"best_ms", s.best}, {"median_ms", s.median}}; }

// The experts' stacked weights, allocated once per shape and filled on the device.
struct Weights {
  OwnedTensor w13, w2;
};

class LayerBench {
 public:
  LayerBench(Backend& b, const LayerShape& s, int reps, int64_t flush_bytes)
      : b_(b), s_(s), reps_(reps) {
    const DType dt = b.compute_dtype();
    w_.w13 = b.alloc(dt, {s.n_experts, 2 * s.inter, s.hidden});
    w_.w2 = b.alloc(dt, {s.n_experts, s.hidden, s.inter});
    const float scale = 1.0f / static_cast<float>(s.hidden);
    b.fill_dummy(w_.w13.tensor.reshape({w_.w13.tensor.numel()}), 11, 0.0f, scale);
    b.fill_dummy(w_.w2.tensor.reshape({w_.w2.tensor.numel()}), 12, 0.0f, scale);
    flush_a_ = b.alloc(dt, {flush_bytes / static_cast<int64_t>(dtype_size(dt))});
    flush_b_ = b.alloc(dt, {flush_bytes / static_cast<int64_t>(dtype_size(dt))});
  }

  nlohmann::json run(int64_t n, double hbm_gbps, double tflops) {
    const int64_t H = s_.hidden, I = s_.inter, E = s_.n_experts, K = s_.top_k, R = n * K;
    const DType dt = b_.compute_dtype();
    // Routing: K distinct experts per token, uniformly at random; weights in (0, 1).
    std::mt19937 rng(static_cast<uint32_t>(1000 + n));
    std::vector<int32_t> ids, perm(static_cast<size_t>(E)), slot_of(static_cast<size_t>(E));
    std::vector<float> gates;
    std::iota(perm.begin(), perm.end(), 0);
    std::iota(slot_of.begin(), slot_of.end(), 0);
    std::uniform_real_distribution<float> u(0.05f, 1.0f);
    std::vector<bool> active(static_cast<size_t>(E), false);
    for (int64_t t = 0; t < n; ++t) {
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int64_t j = 0; j < K; ++j) {
        ids.push_back(perm[static_cast<size_t>(j)]);
        gates.push_back(u(rng));
        active[static_cast<size_t>(perm[static_cast<size_t>(j)])] = true;
      }
    }
    const int64_t n_active = std::count(active.begin(), active.end(), true);

    OwnedTensor ids_t = b_.alloc(DType::kI32, {n, K}), gates_t = b_.alloc(DType::kF32, {n, K});
    b_.copy_from_host(ids_t.tensor, ids.data(), ids.size() * sizeof(int32_t));
    b_.copy_from_host(gates_t.tensor, gates.data(), gates.size() * sizeof(float));
    OwnedTensor slot_t = b_.alloc(DType::kI32, {E}), off = b_.alloc(DType::kI32, {E + 1}),
                row_token = b_.alloc(DType::kI32, {R}), row_gate = b_.alloc(DType::kF32, {R}),
                token_rows = b_.alloc(DType::kI32, {n, K}),
                tiles = b_.alloc(DType::kI32, {moe_tile_capacity(R, E)});
    b_.copy_from_host(slot_t.tensor, slot_of.data(), slot_of.size() * sizeof(int32_t));
    MoeLayout l;
    l.n_slots = E;
    l.slot_of_expert = slot_t.tensor;
    l.expert_offsets = off.tensor;
    l.row_token = row_token.tensor;
    l.row_gate = row_gate.tensor;
    l.token_rows = token_rows.tensor;
    l.tiles = tiles.tensor;
    OwnedTensor x = b_.alloc(dt, {n, H}), out = b_.alloc(dt, {n, H}), act = b_.alloc(dt, {R, I}),
                y = b_.alloc(dt, {R, H});
    b_.fill_dummy(x.tensor, 13, 0.0f, 1.0f);

    auto chain = [&](DeviceClock* clock) {
      if (clock) clock->record(0);
      b_.moe_align(ids_t.tensor, gates_t.tensor, l);
      if (clock) clock->record(1);
      b_.moe_gate_up(x.tensor, w_.w13.tensor, l, act.tensor);
      if (clock) clock->record(2);
      b_.moe_down(act.tensor, w_.w2.tensor, l, y.tensor);
      if (clock) clock->record(3);
      b_.moe_combine(y.tensor, l, out.tensor);
      if (clock) clock->record(4);
    };
    for (int i = 0; i < 3; ++i) chain(nullptr);  // warm-up
    std::unique_ptr<DeviceClock> clock = b_.make_clock(5);
    std::vector<double> total, align, gate_up, down, combine, gemm;
    for (int r = 0; r < reps_; ++r) {
      b_.copy(flush_b_.tensor, flush_a_.tensor);  // evict the previous repetition's weights
      chain(clock.get());
      total.push_back(clock->elapsed_ms(0, 4));
      align.push_back(clock->elapsed_ms(0, 1));
      gate_up.push_back(clock->elapsed_ms(1, 2));
      down.push_back(clock->elapsed_ms(2, 3));
      combine.push_back(clock->elapsed_ms(3, 4));
      gemm.push_back(clock->elapsed_ms(1, 3));
    }

    const int64_t es = static_cast<int64_t>(dtype_size(dt));
    const double weight_bytes = static_cast<double>(n_active * 3 * I * H * es);
    const double gemm_bytes = weight_bytes + static_cast<double>((n * H + 2 * R * I + R * H) * es);
    const double bytes = gemm_bytes + static_cast<double>((R * H + 2 * n * H) * es);
    const double flops = 2.0 * static_cast<double>(R) * static_cast<double>(3 * I * H);
    const Stats t = stats(total), g = stats(gemm);
    auto gbps = [](double b, double ms) { return b / (ms * 1e-3) / 1e9; };
    nlohmann::json j;
    j["model"] = s_.name;
    j["n_tokens"] = n;
    j["rows"] = R;
    j["active_experts"] = n_active;
    j["bytes"] = bytes;
    j["gemm_bytes"] = gemm_bytes;
    j["flops"] = flops;
    j["total"] = stats_json(t);
    j["gemm"] = stats_json(g);
    j["align"] = stats_json(stats(align));
    j["gate_up"] = stats_json(stats(gate_up));
    j["down"] = stats_json(stats(down));
    j["combine"] = stats_json(stats(combine));
    // Throughputs from the median; fractions of the ceilings measured in this run.
    j["gbps"] = gbps(bytes, t.median);
    j["hbm_frac"] = gbps(bytes, t.median) / hbm_gbps;
    j["gemm_gbps"] = gbps(gemm_bytes, g.median);
    j["gemm_hbm_frac"] = gbps(gemm_bytes, g.median) / hbm_gbps;
    j["tflops"] = flops / (t.median * 1e-3) / 1e12;
    j["gemm_tflops"] = flops / (g.median * 1e-3) / 1e12;
    j["gemm_tensor_frac"] = flops / (g.median * 1e-3) / 1e12 / tflops;
    // Per GEMM: gate_up does 2/3 of the flops, down 1/3.
    const double gu_ms = stats(gate_up).median, dn_ms = stats(down).median;
    j["gate_up_tflops"] = flops * 2.0 / 3.0 / (gu_ms * 1e-3) / 1e12;
    j["down_tflops"] = flops / 3.0 / (dn_ms * 1e-3) / 1e12;
    j["gate_up_tensor_frac"] = j["gate_up_tflops"].get<double>() / tflops;
    j["down_tensor_frac"] = j["down_tflops"].get<double>() / tflops;
    return j;
  }

 private:
  Backend& b_;
  LayerShape s_;
  int reps_;
  Weights w_;
  OwnedTensor flush_a_, flush_b_;
};

}  // namespace
}  // namespace msi

int main(int argc, char** argv) {
  using namespace msi;
  CLI::App app("grouped MoE expert path (align, gate_up, down, combine) against the rooflines");
  std::string device = "cuda:0", model = "all";
  bool as_json = false;
  int reps = 30;
  std::vector<int64_t> tokens = {1, 8, 64, 256};
  app.add_option("--device", device, "Backend device (default: cuda:0)");
  app.add_flag("--json", as_json, "Print JSON instead of a table (default: table)");
  app.add_option("--reps", reps, "Timed repetitions per point, ≥ 20 (default: 30)")
      ->check(CLI::Range(20, 100000));
  app.add_option("--model", model, "mixtral, qwen3 or all (default: all)")
      ->check(CLI::IsMember({"mixtral", "qwen3", "all"}));
  app.add_option("--tokens", tokens, "Token counts (default: 1 8 64 256)");
  CLI11_PARSE(app, argc, argv);

  auto backend_or = make_backend(device);
  if (!backend_or.is_ok()) {
    std::cerr << backend_or.status().to_string() << "\n";
    return 1;
  }
  std::unique_ptr<Backend> backend = std::move(backend_or).value();
  const DeviceCeilings ceil = measure_ceilings(*backend);

  const std::vector<LayerShape> shapes = {{"mixtral-8x7b", 4096, 14336, 8, 2},
                                          {"qwen3-30b-a3b", 2048, 768, 128, 8}};
  nlohmann::json results = nlohmann::json::array();
  for (const LayerShape& s : shapes) {
    if (model != "all" && s.name.rfind(model, 0) != 0) continue;
    LayerBench bench(*backend, s, reps, int64_t{256} << 20);
    for (int64_t n : tokens) results.push_back(bench.run(n, ceil.hbm_gbps, ceil.bf16_tflops));
  }

  if (as_json) {
    nlohmann::json doc;
    doc["device"] = backend->name();
    doc["ceilings"] = {{"hbm_gbps", ceil.hbm_gbps}, {"bf16_tflops", ceil.bf16_tflops}};
    doc["results"] = results;
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  fmt::print("{}: HBM {:.0f} GB/s, bf16 GEMM {:.0f} TFLOP/s (measured)\n", backend->name(),
             ceil.hbm_gbps, ceil.bf16_tflops);
  fmt::print(
      "{:<14} {:>5} {:>6} {:>7} {:>10} {:>10} {:>9} {:>7} {:>9} {:>7} {:>8} {:>7} {:>7} {:>7}\n",
      "model", "n", "active", "MB", "total us", "gemm us", "GB/s", "%HBM", "gemm GB/s", "%HBM",
      "gemm TF", "%tc", "%tc gu", "%tc dn");
  for (const auto& r : results) {
    fmt::print(
        "{:<14} {:>5} {:>6} {:>7.1f} {:>10.1f} {:>10.1f} {:>9.0f} {:>6.1f}% {:>9.0f} {:>6.1f}% "
        "{:>8.1f} {:>6.1f}% {:>6.1f}% {:>6.1f}%\n",
        r["model"].get<std::string>(), r["n_tokens"].get<int64_t>(),
        r["active_experts"].get<int64_t>(), r["bytes"].get<double>() / 1e6,
        r["total"]["median_ms"].get<double>() * 1e3, r["gemm"]["median_ms"].get<double>() * 1e3,
        r["gbps"].get<double>(), 100 * r["hbm_frac"].get<double>(), r["gemm_gbps"].get<double>(),
        100 * r["gemm_hbm_frac"].get<double>(), r["gemm_tflops"].get<double>(),
        100 * r["gemm_tensor_frac"].get<double>(), 100 * r["gate_up_tensor_frac"].get<double>(),
        100 * r["down_tensor_frac"].get<double>());
  }
  fmt::print(
      "(median of {} reps after an L2 flush; %tc = gate_up + down flops / time as a fraction of "
      "the measured bf16 GEMM ceiling, %tc gu / dn per GEMM; stages: --json)\n",
      reps);
  return 0;
}

// attention_ops_bench: Backend::paged_attention on decode batches of the Mixtral-8x7B and
// Qwen3-30B-A3B attention shapes, against the HBM ceiling measured in the same run.
//
// Decode: one query token per sequence at position context − 1, block_size 16, every sequence's
// blocks drawn from a shuffled pool (non-contiguous, as a long-running server's would be).
// Bytes are the K and V rows of every token's context plus q and out. Before each repetition
// (untimed) a GEMV reads a 256 MiB weight, so the KV comes from HBM. NOTE: a read, not a copy:
// a copy leaves ~50 MB of dirty L2 lines whose write-back (~15 µs) lands in the timed call.
// Also times one 2048-token prefill per model (each query token reads its own context; time
// only).
//
//   build/bench/attention_ops_bench [--device cuda:0] [--json] [--reps 30]
#include <algorithm>
#include <cmath>
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

namespace {

using msi::AttentionShape;
using msi::Backend;
using msi::DType;
using msi::OwnedTensor;
using msi::Tensor;

struct ModelShape {
  std::string name;
  int64_t n_heads, n_kv_heads, head_dim;
};

constexpr int64_t kBlockSize = 16;
constexpr int64_t kFlushRows = 16384, kFlushCols = 8192;  // bf16: 256 MiB > the 50 MB L2
constexpr int kWarmup = 3;
constexpr int64_t kPrefillTokens = 2048;

struct Timing {
  double best_ms, median_ms;
};

// The device buffers of one model shape, sized for the largest case.
struct Pool {
  OwnedTensor k_cache, v_cache;          // [n_blocks * kBlockSize, kv_dim]
  OwnedTensor q, out;                    // [max_tokens, q_dim]
  OwnedTensor token_seq, token_pos;      // [max_tokens]
  OwnedTensor block_tables;              // [n_blocks] entries, viewed per case
  int64_t n_blocks = 0, max_tokens = 0;
};

class Bench {
 public:
  Bench(Backend& backend, int reps) : b_(backend), reps_(reps) {
    flush_w_ = b_.alloc(DType::kBF16, {kFlushRows, kFlushCols});
    flush_x_ = b_.alloc(DType::kBF16, {1, kFlushCols});
    flush_y_ = b_.alloc(DType::kBF16, {1, kFlushRows});
    clock_ = b_.make_clock(2);
  }

  // n_blocks: the most blocks one case's sequences hold together.
  Pool make_pool(const ModelShape& m, int64_t max_tokens, int64_t n_blocks) {
    Pool p;
    p.max_tokens = max_tokens;
    p.n_blocks = n_blocks;
    const int64_t kv_dim = m.n_kv_heads * m.head_dim, q_dim = m.n_heads * m.head_dim;
    p.k_cache = b_.alloc(DType::kBF16, {p.n_blocks * kBlockSize, kv_dim});
    p.v_cache = b_.alloc(DType::kBF16, {p.n_blocks * kBlockSize, kv_dim});
    p.q = b_.alloc(DType::kBF16, {max_tokens, q_dim});
    p.out = b_.alloc(DType::kBF16, {max_tokens, q_dim});
    b_.fill_dummy(p.k_cache.tensor, 1, 0.0f, 1.0f);
    b_.fill_dummy(p.v_cache.tensor, 2, 0.0f, 1.0f);
    b_.fill_dummy(p.q.tensor, 3, 0.0f, 1.0f);
    p.token_seq = b_.alloc(DType::kI32, {max_tokens});
    p.token_pos = b_.alloc(DType::kI32, {max_tokens});
    p.block_tables = b_.alloc(DType::kI32, {n_blocks});
    return p;
  }

  // Sequence s of n_seqs gets context_blocks blocks from a shuffled pool; token i is sequence
  // token_seq[i] at token_pos[i].
  void plan(Pool& p, int64_t n_seqs, int64_t context_blocks, const std::vector<int32_t>& seq,
            const std::vector<int32_t>& pos) {
    std::vector<int32_t> blocks(static_cast<size_t>(p.n_blocks));
    std::iota(blocks.begin(), blocks.end(), 0);
    std::shuffle(blocks.begin(), blocks.end(), rng_);
    std::vector<int32_t> tables(static_cast<size_t>(n_seqs * context_blocks));
    std::copy_n(blocks.begin(), tables.size(), tables.begin());
    // Viewed as [n_seqs, context_blocks]: max_blocks_per_seq is the longest context.
    table_view_ = Tensor::view(p.block_tables.tensor.data, DType::kI32, {n_seqs, context_blocks});
    seq_view_ = Tensor::view(p.token_seq.tensor.data, DType::kI32, {int64_t(seq.size())});
    pos_view_ = Tensor::view(p.token_pos.tensor.data, DType::kI32, {int64_t(pos.size())});
    b_.copy_from_host(table_view_, tables.data(), tables.size() * sizeof(int32_t));
    b_.copy_from_host(seq_view_, seq.data(), seq.size() * sizeof(int32_t));
    b_.copy_from_host(pos_view_, pos.data(), pos.size() * sizeof(int32_t));
  }

  Timing time(const ModelShape& m, Pool& p, int64_t n_tokens, int64_t context_blocks) {
    const int64_t q_dim = m.n_heads * m.head_dim;
    const Tensor q = Tensor::view(p.q.tensor.data, DType::kBF16, {n_tokens, q_dim});
    const Tensor out = Tensor::view(p.out.tensor.data, DType::kBF16, {n_tokens, q_dim});
    AttentionShape shape;
    shape.n_heads = m.n_heads;
    shape.n_kv_heads = m.n_kv_heads;
    shape.head_dim = m.head_dim;
    shape.block_size = kBlockSize;
    shape.max_blocks_per_seq = context_blocks;
    shape.scale = 1.0f / std::sqrt(static_cast<float>(m.head_dim));
    auto run = [&] {
      b_.paged_attention(q, p.k_cache.tensor, p.v_cache.tensor, out, seq_view_, pos_view_,
                         table_view_, shape);
    };
    for (int i = 0; i < kWarmup; ++i) run();
    std::vector<double> ms;
    for (int r = 0; r < reps_; ++r) {
      b_.linear(flush_x_.tensor, flush_w_.tensor, Tensor{}, flush_y_.tensor);
      clock_->record(0);
      run();
      clock_->record(1);
      ms.push_back(clock_->elapsed_ms(0, 1));
    }
    std::sort(ms.begin(), ms.end());
    return Timing{ms.front(), ms[ms.size() / 2]};
  }

 private:
  Backend& b_;
  int reps_;
  OwnedTensor flush_w_, flush_x_, flush_y_;
  std::unique_ptr<msi::DeviceClock> clock_;
  Tensor table_view_, seq_view_, pos_view_;
  std::mt19937 rng_{42};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("paged attention decode bandwidth against the measured HBM ceiling");
  std::string device = "cuda:0";
  bool as_json = false;
  int reps = 30;
  std::vector<int64_t> batches = {1, 8, 32, 64, 256};
  std::vector<int64_t> contexts = {1024, 4096};
  app.add_option("--device", device, "Backend device (default: cuda:0)");
  app.add_flag("--json", as_json, "Print JSON instead of a table (default: table)");
  app.add_option("--reps", reps, "Timed repetitions per case (default: 30)");
  app.add_option("--batches", batches, "Decode batch sizes (default: 1 8 32 64 256)");
  app.add_option("--contexts", contexts, "Context lengths, multiples of 16 (default: 1024 4096)");
  CLI11_PARSE(app, argc, argv);
  reps = std::max(reps, 1);

  auto backend_or = msi::make_backend(device);
  if (!backend_or.is_ok()) {
    std::cerr << backend_or.status().to_string() << "\n";
    return 1;
  }
  Backend& backend = **backend_or;
  const msi::DeviceCeilings ceil = msi::measure_ceilings(backend);

  const std::vector<ModelShape> models = {{"mixtral-8x7b", 32, 8, 128},
                                          {"qwen3-30b-a3b", 32, 4, 128}};
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  const int64_t max_context = *std::max_element(contexts.begin(), contexts.end());
  const int64_t n_blocks = std::max(max_batch * max_context, kPrefillTokens) / kBlockSize;
  nlohmann::json report = {{"device", backend.name()},
                           {"hbm_gbps", ceil.hbm_gbps},
                           {"bf16_tflops", ceil.bf16_tflops},
                           {"reps", reps},
                           {"block_size", kBlockSize},
                           {"l2_flushed", true},
                           {"cases", nlohmann::json::array()}};
  Bench bench(backend, reps);
  for (const ModelShape& m : models) {
    Pool pool = bench.make_pool(m, std::max(max_batch, kPrefillTokens), n_blocks);
    const int64_t kv_row_bytes = m.n_kv_heads * m.head_dim * 2;
    const int64_t q_row_bytes = m.n_heads * m.head_dim * 2;
    for (int64_t context : contexts) {
      for (int64_t batch : batches) {
        std::vector<int32_t> seq(static_cast<size_t>(batch)), pos(seq.size(),
                                                                  int32_t(context - 1));
        std::iota(seq.begin(), seq.end(), 0);
        bench.plan(pool, batch, context / kBlockSize, seq, pos);
        const Timing t = bench.time(m, pool, batch, context / kBlockSize);
        // K and V of every context, q read, out written.
        const double bytes = double(batch) * (2.0 * context * kv_row_bytes + 2.0 * q_row_bytes);
        const double best_gbps = bytes / (t.best_ms * 1e-3) / 1e9;
        const double median_gbps = bytes / (t.median_ms * 1e-3) / 1e9;
        report["cases"].push_back({{"model", m.name},
                                   {"kind", "decode"},
                                   {"batch", batch},
                                   {"context", context},
                                   {"n_heads", m.n_heads},
                                   {"n_kv_heads", m.n_kv_heads},
                                   {"head_dim", m.head_dim},
                                   {"bytes", bytes},
                                   {"best_ms", t.best_ms},
                                   {"median_ms", t.median_ms},
                                   {"best_gbps", best_gbps},
                                   {"median_gbps", median_gbps},
                                   {"best_of_hbm", best_gbps / ceil.hbm_gbps},
                                   {"median_of_hbm", median_gbps / ceil.hbm_gbps}});
      }
    }
    // One prefill of kPrefillTokens tokens: token i at position i of sequence 0.
    std::vector<int32_t> seq(static_cast<size_t>(kPrefillTokens), 0), pos(seq.size());
    std::iota(pos.begin(), pos.end(), 0);
    bench.plan(pool, 1, kPrefillTokens / kBlockSize, seq, pos);
    const Timing t = bench.time(m, pool, kPrefillTokens, kPrefillTokens / kBlockSize);
    report["cases"].push_back({{"model", m.name},
                               {"kind", "prefill"},
                               {"batch", 1},
                               {"n_tokens", kPrefillTokens},
                               {"context", kPrefillTokens},
                               {"best_ms", t.best_ms},
                               {"median_ms", t.median_ms}});
  }

  if (as_json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: HBM ceiling {:.0f} GB/s (copy), {} reps, L2 flushed\n",
                           backend.name(), ceil.hbm_gbps, reps);
  std::cout << fmt::format("{:14} {:8} {:>6} {:>7} {:>10} {:>10} {:>9} {:>7}\n", "model", "kind",
                           "batch", "context", "best ms", "median ms", "GB/s", "of HBM");
  for (const auto& c : report["cases"]) {
    if (c["kind"] == "decode") {
      std::cout << fmt::format("{:14} {:8} {:>6} {:>7} {:>10.4f} {:>10.4f} {:>9.0f} {:>6.1f}%\n",
                               c["model"].get<std::string>(), "decode", c["batch"].get<int64_t>(),
                               c["context"].get<int64_t>(), c["best_ms"].get<double>(),
                               c["median_ms"].get<double>(), c["median_gbps"].get<double>(),
                               100.0 * c["median_of_hbm"].get<double>());
    } else {
      std::cout << fmt::format("{:14} {:8} {:>6} {:>7} {:>10.4f} {:>10.4f}\n",
                               c["model"].get<std::string>(), "prefill", c["n_tokens"].get<int64_t>(),
                               c["context"].get<int64_t>(), c["best_ms"].get<double>(),
                               c["median_ms"].get<double>());
    }
  }
  return 0;
}

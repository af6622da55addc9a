#include "bench/offline_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "backend/registry.h"
#include "bench/ceilings.h"
#include "engine/worker_setup.h"
#include "roles/expert_server.h"
#include "roles/moe_message.h"
#include "roles/peer_expert_link.h"
#include "roles/peer_unit_handler.h"
#include "roles/stage_marker.h"

namespace msi::bench {
namespace {

using json = nlohmann::json;
constexpr int kStages = static_cast<int>(Stage::kCount);

// Device marks: mark i is recorded into clock slot i; the span from mark i to mark i+1 belongs to
// the stage of mark i. end() closes the last span.
class ClockMarker final : public StageMarker {
 public:
  ClockMarker(Backend& backend, int capacity) : clock_(backend.make_clock(capacity + 1)), capacity_(capacity) {}
  void begin() { stages_.clear(); }
  void mark(Stage stage) override {
    if (static_cast<int>(stages_.size()) >= capacity_) return;  // sized for a step; never reached
    clock_->record(static_cast<int>(stages_.size()));
    stages_.push_back(stage);
  }
  // Adds this step's time per stage (ms) into totals.
  void end(std::array<double, kStages>& totals) {
    const int n = static_cast<int>(stages_.size());
    clock_->record(n);
    for (int i = 0; i < n; ++i) totals[static_cast<size_t>(stages_[static_cast<size_t>(i)])] += clock_->elapsed_ms(i, i + 1);
  }

 private:
  std::unique_ptr<DeviceClock> clock_;
  int capacity_;
  std::vector<Stage> stages_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Bytes and FLOPs one decode step must move and do, per stage (the roofline's numerator).
struct StageCost {
  double bytes = 0.0;
  double flops = 0.0;
};

// active[l], rows[l]: experts with at least one token, and routed (token, expert) rows, in MoE
// layer l per step (means over the profiled steps).
std::array<StageCost, kStages> decode_step_cost(const ModelConfig& c, double elem, int64_t batch, double kv_tokens,
                                                const std::vector<double>& active_per_layer,
                                                const std::vector<double>& rows_per_layer) {
  std::array<StageCost, kStages> cost{};
  const double h = static_cast<double>(c.hidden_size), q = static_cast<double>(c.q_dim()),
               kv = static_cast<double>(c.kv_dim()), b = static_cast<double>(batch);
  const double inter = static_cast<double>(c.moe_intermediate_size);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    StageCost& attn = cost[static_cast<size_t>(Stage::kAttention)];
    const double attn_params = 2.0 * q * h + 2.0 * kv * h + (c.attention_bias ? q + 2.0 * kv : 0.0) + 2.0 * h;
    attn.bytes += attn_params * elem + 2.0 * kv_tokens * kv * elem;  // weights + K and V read
    attn.flops += 2.0 * b * attn_params + 4.0 * kv_tokens * q;  // projections; QKᵀ and PV
    StageCost& ffn = cost[static_cast<size_t>(Stage::kExperts)];
    if (!c.is_moe_layer(l)) {
      const double p = 3.0 * h * static_cast<double>(c.intermediate_size);
      ffn.bytes += p * elem;
      ffn.flops += 2.0 * b * p;
      continue;
    }
    StageCost& router = cost[static_cast<size_t>(Stage::kRouter)];
    router.bytes += static_cast<double>(c.n_experts) * h * elem;
    router.flops += 2.0 * b * static_cast<double>(c.n_experts) * h;
    // Routed experts: the weights of every expert with a token (measured), once per step.
    const double active = active_per_layer[static_cast<size_t>(l)], rows = rows_per_layer[static_cast<size_t>(l)];
    ffn.bytes += active * 3.0 * h * inter * elem + rows * (2.0 * h + inter * 2.0) * elem;
    ffn.flops += 2.0 * rows * 3.0 * h * inter;
    if (c.shared_expert_intermediate_size > 0) {
      const double p = 3.0 * h * static_cast<double>(c.shared_expert_intermediate_size) + h;
      ffn.bytes += p * elem;
      ffn.flops += 2.0 * b * p;
    }
    StageCost& combine = cost[static_cast<size_t>(Stage::kCombine)];
    combine.bytes += rows * h * elem + 2.0 * b * h * elem;
  }
  StageCost& other = cost[static_cast<size_t>(Stage::kOther)];
  other.bytes += static_cast<double>(c.vocab_size) * h * elem + b * static_cast<double>(c.vocab_size) * 4.0;
  other.flops += 2.0 * b * static_cast<double>(c.vocab_size) * h;
  return cost;
}

void progress_line(bool on, const char* what, int64_t i, int64_t n) {
  if (!on) return;
  std::fprintf(stderr, "\r[bench] %s %lld/%lld   ", what, static_cast<long long>(i), static_cast<long long>(n));
  if (i == n) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

// The expert side of a disaggregated run: one thread per expert device serving the peer transport.
struct PeerExperts {
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::unique_ptr<PeerUnitHandler>> handlers;
  std::unique_ptr<comm::M2NTransport> dispatch, combine;
  std::vector<std::thread> threads;
  std::vector<Status> status;
  std::unique_ptr<PeerExpertLink> link;

  Status start(const ModelConfig& c, const WorkerSetup& setup, const EngineOptions& o, Backend& attention) {
    const int n = o.n_expert_workers;
    for (int x = 0; x < n; ++x) {
      MSI_ASSIGN_OR_RETURN(auto b, make_backend(expert_device(o, x)));
      MSI_RETURN_IF_ERROR(b->enable_peer_access(attention));
      MSI_RETURN_IF_ERROR(attention.enable_peer_access(*b));
      MSI_ASSIGN_OR_RETURN(StackedExpertWeights w,
                           load_stacked_expert_weights(c, *setup.source, *b, setup.placement.experts_of(x)));
      handlers.push_back(std::make_unique<PeerUnitHandler>(c, *b, std::move(w), 1, o.max_batched_tokens,
                                                           o.n_micro_batches));
      backends.push_back(std::move(b));
    }
    MSI_ASSIGN_OR_RETURN(dispatch, comm::make_inproc_transport(dispatch_options(c, o)));
    MSI_ASSIGN_OR_RETURN(combine, comm::make_inproc_transport(combine_options(c, o)));
    status.resize(static_cast<size_t>(n));
    for (int x = 0; x < n; ++x) {
      MSI_ASSIGN_OR_RETURN(auto receiver, dispatch->open_receiver(x));
      MSI_ASSIGN_OR_RETURN(auto sender, combine->open_sender(x));
      auto server = std::make_shared<ExpertServer>(c, *handlers[static_cast<size_t>(x)], std::move(receiver),
                                                   std::move(sender), 1, o.n_micro_batches, nullptr);
      threads.emplace_back([this, x, server] { status[static_cast<size_t>(x)] = server->run(); });
    }
    MSI_ASSIGN_OR_RETURN(auto sender, dispatch->open_sender(0));
    MSI_ASSIGN_OR_RETURN(auto receiver, combine->open_receiver(0));
    link = std::make_unique<PeerExpertLink>(c, attention, std::move(sender), std::move(receiver), n, o.n_micro_batches);
    return Status::ok();
  }

  // An empty step whose first MoE unit says idle and shut down: the servers answer stop and return.
  Status stop(AttentionWorker& worker, ExpertLink& l, const ModelConfig& c, int m, int64_t step) {
    Status st = worker.begin_step({}, m, step);
    for (int layer = 0; st.is_ok() && layer < c.n_layers; ++layer) {
      const bool moe = c.is_moe_layer(layer);
      st = worker.layer_attention(layer, 0, l, moe ? (kFlagIdle | kFlagShutdown) : 0u);
      if (st.is_ok() && moe) {
        st = worker.layer_combine(layer, 0, l).status();
        break;
      }
    }
    join();
    MSI_RETURN_IF_ERROR(st);
    for (const Status& s : status) MSI_RETURN_IF_ERROR(s);
    return Status::ok();
  }

  void join() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
  // After an early error the servers end when their peer timeout passes without a message.
  ~PeerExperts() { join(); }
};

}  // namespace

Result<json> run_offline_bench(const OfflineBenchConfig& cfg) {
  if (cfg.batch_size < 1 || cfg.input_len < 1 || cfg.output_len < 1) {
    return error(StatusCode::kInvalidArgument, "--batch-size, --input-len and --output-len must be at least 1");
  }
  if (cfg.warmup_steps < 0 || cfg.profile_steps < 0 || cfg.warmup_steps + cfg.profile_steps >= cfg.output_len) {
    return error(StatusCode::kInvalidArgument,
                 "--output-len {} must exceed the {} warm-up and {} profiled decode steps", cfg.output_len,
                 cfg.warmup_steps, cfg.profile_steps);
  }
  EngineOptions o = cfg.engine;
  o.n_attention_workers = 1;
  // The experts on this worker's device, or on --expert-devices (peer transport, threads).
  const bool peer = !o.expert_devices.empty();
  o.n_expert_workers = peer ? static_cast<int>(o.expert_devices.size()) : 0;
  if (peer) o.device = attention_device(o, 0);
  o.max_seqs = cfg.batch_size;
  o.max_batched_tokens = cfg.real_prefill ? std::max(o.max_batched_tokens, cfg.batch_size) : cfg.batch_size;
  o.max_model_len = cfg.input_len + cfg.output_len + 1;
  o.kv_n_blocks = cfg.batch_size * ((o.max_model_len + o.kv_block_size - 1) / o.kv_block_size) + 1;
  MSI_RETURN_IF_ERROR(validate_engine_options(o));

  MSI_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(o.device));
  const bool gpu = backend->device().kind == DeviceKind::kCuda;
  // The ceilings first, while the device memory is free. Smaller sizes on the CPU (minutes otherwise).
  const DeviceCeilings ceil = gpu ? measure_ceilings(*backend) : measure_ceilings(*backend, int64_t{1} << 28, 1024, 3);

  MSI_ASSIGN_OR_RETURN(WorkerSetup setup, open_worker_setup(cfg.model_dir, o));
  const ModelConfig& c = setup.config;
  const auto t_load = std::chrono::steady_clock::now();
  MSI_ASSIGN_OR_RETURN(std::unique_ptr<AttentionWorker> worker, make_attention_worker(c, setup, *backend, o));
  std::unique_ptr<ColocatedExpertLink> colocated;
  PeerExperts experts;
  ExpertLink* link = nullptr;
  if (peer) {
    MSI_RETURN_IF_ERROR(experts.start(c, setup, o, *backend));
    link = experts.link.get();
  } else {
    MSI_ASSIGN_OR_RETURN(colocated, make_colocated_link(c, setup, *backend, o));
    link = colocated.get();
  }
  setup.source.reset();
  backend->synchronize();
  for (auto& b : experts.backends) b->synchronize();
  // The routed (token, expert) pairs since the last call, flattened [layer][global expert]: the
  // attention worker counts them on the device (AttentionWorker::take_expert_counts).
  std::vector<int64_t> routed;
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

  const int64_t batch = cfg.batch_size;
  std::mt19937_64 rng(cfg.seed);
  std::uniform_int_distribution<int32_t> token_dist(0, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> next(static_cast<size_t>(batch));
  for (int64_t s = 0; s < batch; ++s) MSI_RETURN_IF_ERROR(worker->add_sequence(s));

  int64_t step = 0;
  std::vector<SeqChunk> chunks;
  std::vector<int32_t> ids(static_cast<size_t>(batch));
  const std::vector<float> greedy(static_cast<size_t>(4 * batch), 0.0f);  // sampling rows: all greedy
  // One step through the ping-pong order of attention_runner.h.
  bool used_graphs = false;
  auto run_step = [&](std::span<const SeqChunk> step_chunks) -> Status {
    if (!o.enforce_eager && worker->graph_eligible(step_chunks, o.n_micro_batches, *link)) {
      used_graphs = true;
      return worker->run_decode_graph(step_chunks, step++, *link, nullptr, ids.data());
    }
    MSI_RETURN_IF_ERROR(worker->begin_step(step_chunks, o.n_micro_batches, step++));
    const int n_mb = worker->n_micro_batches();
    const int n_layers = static_cast<int>(c.n_layers);
    for (int l = 0; l < n_layers; ++l) {
      for (int mb = 0; mb < n_mb; ++mb) {
        if (l > 0) MSI_RETURN_IF_ERROR(worker->layer_combine(l - 1, mb, *link).status());
        MSI_RETURN_IF_ERROR(worker->layer_attention(l, mb, *link));
      }
    }
    for (int mb = 0; mb < n_mb; ++mb) MSI_RETURN_IF_ERROR(worker->layer_combine(n_layers - 1, mb, *link).status());
    return worker->finish_step_sample(greedy.data(), ids.data());
  };

  // The context.
  double prefill_ms = 0.0;
  if (cfg.real_prefill) {
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
    for (auto& p : prompts) {
      p.resize(static_cast<size_t>(cfg.input_len));
      for (int32_t& t : p) t = token_dist(rng);
    }
    std::vector<int64_t> done(static_cast<size_t>(batch), 0);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t finished = 0;
    while (finished < batch) {
      chunks.clear();
      std::vector<int64_t> order;
      int64_t budget = o.max_batched_tokens;
      for (int64_t s = 0; s < batch && budget > 0; ++s) {
        const int64_t left = cfg.input_len - done[static_cast<size_t>(s)];
        if (left == 0) continue;
        const int64_t take = std::min(left, budget);
        const auto& p = prompts[static_cast<size_t>(s)];
        chunks.push_back({s, std::span<const int32_t>(p.data() + done[static_cast<size_t>(s)], static_cast<size_t>(take)),
                          take == left});
        order.push_back(s);
        budget -= take;
      }
      MSI_RETURN_IF_ERROR(run_step(chunks));
      size_t row = 0;
      for (size_t i = 0; i < chunks.size(); ++i) {
        const int64_t s = order[i];
        done[static_cast<size_t>(s)] += static_cast<int64_t>(chunks[i].tokens.size());
        if (chunks[i].want_logits) {
          next[static_cast<size_t>(s)] = ids[row++];
          ++finished;
        }
      }
      progress_line(cfg.progress, "prefill: sequences", finished, batch);
    }
    prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  } else {
    for (int64_t s = 0; s < batch; ++s) {
      MSI_RETURN_IF_ERROR(worker->add_synthetic_context(s, cfg.input_len));
      next[static_cast<size_t>(s)] = token_dist(rng);
    }
  }

  // Decode.
  const int64_t n_layers = c.n_layers;
  ClockMarker marker(*backend, static_cast<int>(8 * n_layers * o.n_micro_batches + 16));
  std::array<double, kStages> stage_ms{};
  std::vector<double> step_ms;
  // Per profiled step: experts with a token and routed rows per layer; the window's load per
  // layer and global expert.
  std::vector<double> active_sum(static_cast<size_t>(n_layers), 0.0), rows_sum(static_cast<size_t>(n_layers), 0.0);
  std::vector<int64_t> window_load(static_cast<size_t>(n_layers * c.n_experts), 0);
  double kv_tokens_profiled = 0.0;
  const int64_t timed_end = cfg.output_len - cfg.profile_steps;
  for (int64_t i = 0; i < cfg.output_len; ++i) {
    chunks.clear();
    for (int64_t s = 0; s < batch; ++s) {
      chunks.push_back({s, std::span<const int32_t>(&next[static_cast<size_t>(s)], 1), true});
    }
    const bool profile = i >= timed_end;
    if (profile && i == timed_end) {
      worker->set_marker(&marker);
      if (colocated) colocated->set_marker(&marker);
      for (auto& h : experts.handlers) h->set_profile(true);
      MSI_RETURN_IF_ERROR(worker->take_expert_counts(routed));  // the window starts here
    }
    if (profile) {
      marker.begin();
      for (int64_t s = 0; s < batch; ++s) kv_tokens_profiled += static_cast<double>(worker->n_cached_tokens(s) + 1);
    }
    const auto t0 = std::chrono::steady_clock::now();
    MSI_RETURN_IF_ERROR(run_step(chunks));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (profile) {
      marker.end(stage_ms);
      MSI_RETURN_IF_ERROR(worker->take_expert_counts(routed));
      for (size_t i_le = 0; i_le < routed.size(); ++i_le) {
        const size_t l = i_le / static_cast<size_t>(c.n_experts);
        active_sum[l] += routed[i_le] > 0 ? 1.0 : 0.0;
        rows_sum[l] += static_cast<double>(routed[i_le]);
        window_load[i_le] += routed[i_le];
      }
    } else if (i >= cfg.warmup_steps) {
      step_ms.push_back(ms);
    }
    std::copy(ids.begin(), ids.end(), next.begin());
    progress_line(cfg.progress, "decode: steps", i + 1, cfg.output_len);
  }
  worker->set_marker(nullptr);
  if (colocated) colocated->set_marker(nullptr);
  if (peer) MSI_RETURN_IF_ERROR(experts.stop(*worker, *link, c, o.n_micro_batches, step++));

  // The roofline of the profiled steps.
  const double elem = static_cast<double>(dtype_size(backend->compute_dtype()));
  const int64_t n_prof = cfg.profile_steps;
  const double steps = static_cast<double>(std::max<int64_t>(n_prof, 1));
  for (double& v : active_sum) v /= steps;
  for (double& v : rows_sum) v /= steps;
  const auto cost = decode_step_cost(c, elem, batch, kv_tokens_profiled / steps, active_sum, rows_sum);
  const double bw = ceil.hbm_gbps * 1e9, tc = ceil.bf16_tflops * 1e12;
  json stages = json::array();
  double total_stage_ms = 0.0, floor_ms = 0.0, bytes = 0.0, flops = 0.0;
  for (int s = 0; s < kStages; ++s) total_stage_ms += stage_ms[static_cast<size_t>(s)] / static_cast<double>(std::max<int64_t>(n_prof, 1));
  for (int s = 0; s < kStages; ++s) {
    const double ms = stage_ms[static_cast<size_t>(s)] / static_cast<double>(std::max<int64_t>(n_prof, 1));
    const StageCost& k = cost[static_cast<size_t>(s)];
    const double mem_ms = k.bytes / bw * 1e3, math_ms = k.flops / tc * 1e3;
    const double f = std::max(mem_ms, math_ms);
    floor_ms += f;
    bytes += k.bytes;
    flops += k.flops;
    stages.push_back({{"stage", stage_name(static_cast<Stage>(s))},
                      {"ms", ms},
                      {"fraction", total_stage_ms > 0 ? ms / total_stage_ms : 0.0},
                      {"bytes", k.bytes},
                      {"flops", k.flops},
                      {"bound", mem_ms >= math_ms ? "memory" : "compute"},
                      {"floor_ms", f},
                      {"floor_over_measured", ms > 0 ? f / ms : 0.0},
                      {"achieved_gbps", ms > 0 ? k.bytes / (ms * 1e-3) / 1e9 : 0.0},
                      {"achieved_tflops", ms > 0 ? k.flops / (ms * 1e-3) / 1e12 : 0.0}});
  }
  // Expert load over the profiled steps.
  double active = 0.0;
  int64_t max_tokens = 0, moe_layers = 0;
  // The experts' load over the profiled window, by global expert id (the placement's input).
  json tokens_per_expert = json::array();
  for (int64_t l = 0; l < n_layers; ++l) {
    const auto begin = window_load.begin() + l * c.n_experts;
    std::vector<int64_t> per_expert;  // empty for a dense layer
    if (c.is_moe_layer(l)) {
      per_expert.assign(begin, begin + c.n_experts);
      ++moe_layers;
      active += active_sum[static_cast<size_t>(l)];
      for (int64_t t : per_expert) max_tokens = std::max(max_tokens, t);
    }
    tokens_per_expert.push_back(per_expert);
  }
  const double median = percentile(step_ms, 50.0);
  json result = {
      {"model", cfg.model_dir.string()},
      {"device", backend->name()},
      {"load_format", o.load_format},
      {"layers", n_layers},
      {"batch_size", batch},
      {"input_len", cfg.input_len},
      {"output_len", cfg.output_len},
      {"micro_batches", o.n_micro_batches},
      {"prefill", cfg.real_prefill ? "real" : "synthetic"},
      {"graphs", used_graphs},
      {"load_seconds", load_s},
      {"ceilings", {{"hbm_gbps", ceil.hbm_gbps}, {"bf16_tflops", ceil.bf16_tflops}}},
      {"decode",
       {{"timed_steps", step_ms.size()},
        {"throughput_tokens_per_s", median > 0 ? static_cast<double>(batch) / (median * 1e-3) : 0.0},
        {"step_ms", {{"median", median}, {"p99", percentile(step_ms, 99.0)}, {"min", percentile(step_ms, 0.0)}}}}},
      {"profile",
       {{"steps", n_prof},
        {"step_ms_with_marks", total_stage_ms},
        {"stages", stages},
        {"floor_ms", floor_ms},
        {"bytes", bytes},
        {"flops", flops},
        {"median_step_over_floor", floor_ms > 0 ? median / floor_ms : 0.0},
        {"mean_kv_tokens", kv_tokens_profiled / static_cast<double>(std::max<int64_t>(n_prof, 1))},
        {"active_experts_per_moe_layer", moe_layers > 0 ? active / static_cast<double>(moe_layers) : 0.0},
        {"max_tokens_per_expert_per_step",
         static_cast<double>(max_tokens) / static_cast<double>(std::max<int64_t>(n_prof, 1))}}},
  };
  if (cfg.real_prefill) result["prefill_ms"] = prefill_ms;
  result["expert_load"] = {{"window_steps", n_prof}, {"n_experts", c.n_experts}, {"tokens_per_expert", tokens_per_expert}};
  if (peer) {
    // Disaggregated: the attention device is busy outside the spans where it waits for the
    // experts (the "experts" stage, which holds the waits and the combine); each expert device for
    // its units' compute (device-timed).
    double expert_busy = 0.0;
    for (const auto& h : experts.handlers) expert_busy = std::max(expert_busy, h->busy_ms());
    const double step_marked = total_stage_ms;
    const double waits = stage_ms[static_cast<size_t>(Stage::kExperts)] / static_cast<double>(std::max<int64_t>(n_prof, 1));
    result["expert_devices"] = o.expert_devices;
    result["attention_device"] = o.device;
    result["busy_fraction"] = {
        {"attention_device", step_marked > 0 ? (step_marked - waits) / step_marked : 0.0},
        {"busiest_expert_device", step_marked > 0 ? expert_busy / static_cast<double>(std::max<int64_t>(n_prof, 1)) / step_marked : 0.0}};
  }
  return result;
}

std::string offline_bench_table(const json& r) {
  std::string out;
  out += fmt::format("device            {}\n", r["device"].get<std::string>());
  out += fmt::format("model             {} ({} layers, {} weights)\n", r["model"].get<std::string>(),
                     r["layers"].get<int64_t>(), r["load_format"].get<std::string>());
  out += fmt::format("batch x context   {} x {} (+{} decode steps, {} prefill, m = {})\n", r["batch_size"].get<int64_t>(),
                     r["input_len"].get<int64_t>(), r["output_len"].get<int64_t>(), r["prefill"].get<std::string>(),
                     r["micro_batches"].get<int64_t>());
  out += fmt::format("ceilings          {:.0f} GB/s memory, {:.1f} TFLOP/s GEMM (measured)\n",
                     r["ceilings"]["hbm_gbps"].get<double>(), r["ceilings"]["bf16_tflops"].get<double>());
  const json& d = r["decode"];
  out += fmt::format("decode step       median {:.3f} ms, p99 {:.3f} ms ({} steps{})\n", d["step_ms"]["median"].get<double>(),
                     d["step_ms"]["p99"].get<double>(), d["timed_steps"].get<int64_t>(),
                     r["graphs"].get<bool>() ? ", CUDA graphs" : "");
  out += fmt::format("throughput        {:.1f} tokens/s\n", d["throughput_tokens_per_s"].get<double>());
  const json& p = r["profile"];
  out += fmt::format("floor             {:.3f} ms  (median step / floor = {:.2f})\n", p["floor_ms"].get<double>(),
                     p["median_step_over_floor"].get<double>());
  out += fmt::format("{:<16} {:>9} {:>7} {:>9} {:>8} {:>9}\n", "stage", "ms", "share", "floor ms", "floor/ms", "GB/s");
  for (const json& s : p["stages"]) {
    out += fmt::format("{:<16} {:>9.3f} {:>6.1f}% {:>9.3f} {:>8.2f} {:>9.0f}\n", s["stage"].get<std::string>(),
                       s["ms"].get<double>(), 100.0 * s["fraction"].get<double>(), s["floor_ms"].get<double>(),
                       s["floor_over_measured"].get<double>(), s["achieved_gbps"].get<double>());
  }
  return out;
}

}  // namespace msi::bench

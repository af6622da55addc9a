#include "planner/pipeline_sim.h"

#include <algorithm>
#include <cmath>
#include <queue>

#include <fmt/format.h>

#include "core/check.h"

namespace msi {

double closed_form_step_ms(double t_a, double t_e, double t_c, int64_t n_micro_batches,
                           int64_t n_layers) {
  const double t_f = std::max(t_a, t_e);
  return (t_a + t_e + 2.0 * t_c) + t_f * static_cast<double>(n_micro_batches * n_layers - 1);
}

bool closed_form_holds(double t_a, double t_e, double t_c, int64_t n_micro_batches) {
  const double t_f = std::max(t_a, t_e);
  return t_c < t_f && static_cast<double>(n_micro_batches) * t_f >= 2.0 * (t_f + t_c);
}

const char* sim_span_kind_name(SimSpanKind kind) {
  switch (kind) {
    case SimSpanKind::kAttention: return "attention";
    case SimSpanKind::kExpert: return "experts";
    case SimSpanKind::kDispatch: return "dispatch";
    case SimSpanKind::kCombine: return "combine";
  }
  return "?";
}

namespace {

// Beyond this many (worker, unit) pairs a run takes many seconds: a typo, not a plan.
constexpr int64_t kMaxSimWork = int64_t{1} << 27;
constexpr int64_t kMaxWorkers = int64_t{1} << 20;
constexpr double kShareSumTolerance = 1e-6;

bool finite_non_negative(double x) { return std::isfinite(x) && x >= 0.0; }

Status check_count(const char* name, int64_t n, int64_t max) {
  if (n < 1 || n > max) {
    return error(StatusCode::kInvalidArgument, "simulator: {} is {}, must be 1 to {}", name, n,
                 max);
  }
  return Status::ok();
}

Status validate(const SimConfig& c) {
  MSI_RETURN_IF_ERROR(check_count("n_layers", c.n_layers, kMaxSimWork));
  MSI_RETURN_IF_ERROR(check_count("n_micro_batches", c.n_micro_batches, kMaxSimWork));
  MSI_RETURN_IF_ERROR(check_count("n_attention_workers", c.n_attention_workers, kMaxWorkers));
  MSI_RETURN_IF_ERROR(check_count("n_expert_workers", c.n_expert_workers, kMaxWorkers));
  // In double: the product of four counts can overflow int64.
  const double work = static_cast<double>(c.n_layers) * static_cast<double>(c.n_micro_batches) *
                      static_cast<double>(c.n_attention_workers + c.n_expert_workers);
  if (work > static_cast<double>(kMaxSimWork)) {
    return error(StatusCode::kInvalidArgument,
                 "simulator: {} layers x {} micro-batches x {} workers is past the limit of {} "
                 "(worker, unit) pairs",
                 c.n_layers, c.n_micro_batches, c.n_attention_workers + c.n_expert_workers,
                 kMaxSimWork);
  }
  if (!finite_non_negative(c.attention_ms)) {
    return error(StatusCode::kInvalidArgument, "simulator: attention_ms is {}, must be >= 0",
                 c.attention_ms);
  }
  if (!c.attention_ms_per_worker.empty()) {
    if (static_cast<int64_t>(c.attention_ms_per_worker.size()) != c.n_attention_workers) {
      return error(StatusCode::kInvalidArgument,
                   "simulator: attention_ms_per_worker has {} entries for {} attention workers",
                   c.attention_ms_per_worker.size(), c.n_attention_workers);
    }
    for (size_t a = 0; a < c.attention_ms_per_worker.size(); ++a) {
      if (!finite_non_negative(c.attention_ms_per_worker[a])) {
        return error(StatusCode::kInvalidArgument,
                     "simulator: attention_ms_per_worker[{}] is {}, must be >= 0", a,
                     c.attention_ms_per_worker[a]);
      }
    }
  }
  auto check_cost = [](const ExpertCost& k, const std::string& where) -> Status {
    if (!finite_non_negative(k.ms_per_token) || !finite_non_negative(k.fixed_ms)) {
      return error(StatusCode::kInvalidArgument,
                   "simulator: {} is {{ms_per_token {}, fixed_ms {}}}, both must be >= 0", where,
                   k.ms_per_token, k.fixed_ms);
    }
    return Status::ok();
  };
  MSI_RETURN_IF_ERROR(check_cost(c.expert_cost, "expert_cost"));
  if (!c.expert_cost_per_worker.empty()) {
    if (static_cast<int64_t>(c.expert_cost_per_worker.size()) != c.n_expert_workers) {
      return error(StatusCode::kInvalidArgument,
                   "simulator: expert_cost_per_worker has {} entries for {} expert workers",
                   c.expert_cost_per_worker.size(), c.n_expert_workers);
    }
    for (size_t e = 0; e < c.expert_cost_per_worker.size(); ++e) {
      MSI_RETURN_IF_ERROR(
          check_cost(c.expert_cost_per_worker[e], fmt::format("expert_cost_per_worker[{}]", e)));
    }
  }
  if (c.tokens_per_micro_batch < 0) {
    return error(StatusCode::kInvalidArgument,
                 "simulator: tokens_per_micro_batch is {}, must be >= 0", c.tokens_per_micro_batch);
  }
  if (c.top_k < 1) {
    return error(StatusCode::kInvalidArgument, "simulator: top_k is {}, must be >= 1", c.top_k);
  }
  if (!c.expert_load_shares.empty()) {
    if (static_cast<int64_t>(c.expert_load_shares.size()) != c.n_expert_workers) {
      return error(StatusCode::kInvalidArgument,
                   "simulator: expert_load_shares has {} entries for {} expert workers",
                   c.expert_load_shares.size(), c.n_expert_workers);
    }
    double sum = 0.0;
    for (size_t e = 0; e < c.expert_load_shares.size(); ++e) {
      if (!finite_non_negative(c.expert_load_shares[e])) {
        return error(StatusCode::kInvalidArgument,
                     "simulator: expert_load_shares[{}] is {}, must be >= 0", e,
                     c.expert_load_shares[e]);
      }
      sum += c.expert_load_shares[e];
    }
    if (std::abs(sum - 1.0) > kShareSumTolerance) {
      return error(StatusCode::kInvalidArgument,
                   "simulator: expert_load_shares sum to {}, must sum to 1", sum);
    }
  }
  if (!finite_non_negative(c.transfer_ms)) {
    return error(StatusCode::kInvalidArgument, "simulator: transfer_ms is {}, must be >= 0",
                 c.transfer_ms);
  }
  if (!std::isfinite(c.jitter) || c.jitter < 0.0 || c.jitter >= 1.0) {
    return error(StatusCode::kInvalidArgument, "simulator: jitter is {}, must be in [0, 1)",
                 c.jitter);
  }
  return Status::ok();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum class EventKind : uint8_t { kAttentionDone, kDispatchArrived, kExpertDone, kCombineArrived };

struct Event {
  double time;
  uint64_t seq;  // ties break by insertion order: the run is deterministic
  EventKind kind;
  int32_t worker;
  int32_t unit;  // layer · m + micro-batch
};

struct Later {
  bool operator()(const Event& x, const Event& y) const {
    return x.time != y.time ? x.time > y.time : x.seq > y.seq;
  }
};

// One run: per-resource availability and per-unit arrival counts, driven by the event queue.
class PipelineSim {
 public:
  explicit PipelineSim(const SimConfig& c)
      : c_(c),
        n_a_(static_cast<int32_t>(c.n_attention_workers)),
        n_e_(static_cast<int32_t>(c.n_expert_workers)),
        n_units_(static_cast<int32_t>(c.n_layers * c.n_micro_batches)),
        m_(static_cast<int32_t>(c.n_micro_batches)) {
    attention_ms_.assign(static_cast<size_t>(n_a_), c.attention_ms);
    if (!c.attention_ms_per_worker.empty()) attention_ms_ = c.attention_ms_per_worker;
    // Routed pairs of one unit, split by the load shares: [n_e].
    const double pairs = static_cast<double>(c.n_attention_workers) *
                         static_cast<double>(c.tokens_per_micro_batch) *
                         static_cast<double>(c.top_k);
    expert_ms_.resize(static_cast<size_t>(n_e_));
    for (int32_t e = 0; e < n_e_; ++e) {
      const ExpertCost& k = c.expert_cost_per_worker.empty()
                                ? c.expert_cost
                                : c.expert_cost_per_worker[static_cast<size_t>(e)];
      const double share = c.expert_load_shares.empty()
                               ? 1.0 / static_cast<double>(n_e_)
                               : c.expert_load_shares[static_cast<size_t>(e)];
      expert_ms_[static_cast<size_t>(e)] = k.ms_per_token * share * pairs + k.fixed_ms;
    }
    attention_.resize(static_cast<size_t>(n_a_));
    expert_.resize(static_cast<size_t>(n_e_));
    n_dispatched_.assign(static_cast<size_t>(n_units_), 0);
    n_combined_.assign(static_cast<size_t>(n_units_), 0);
    std::vector<Event> storage;
    storage.reserve(static_cast<size_t>(2 * (n_a_ + n_e_)));
    queue_ = std::priority_queue<Event, std::vector<Event>, Later>(Later{}, std::move(storage));
  }

  SimResult run() {
    for (int32_t a = 0; a < n_a_; ++a) try_start_attention(a, 0.0);
    SimResult r;
    double now = 0.0;
    while (!queue_.empty()) {
      const Event ev = queue_.top();
      queue_.pop();
      now = ev.time;
      ++r.n_events;
      switch (ev.kind) {
        case EventKind::kAttentionDone: on_attention_done(ev.worker, ev.unit, now); break;
        case EventKind::kDispatchArrived: on_dispatch_arrived(ev.unit, now); break;
        case EventKind::kExpertDone: on_expert_done(ev.worker, ev.unit, now); break;
        case EventKind::kCombineArrived: on_combine_arrived(ev.unit, now); break;
      }
    }
    // NOTE: every unit becomes ready eventually (no cycle in the dependencies), so a worker left
    // short of the last unit is a bug in the event handling.
    for (const Worker& w : attention_) MSI_CHECK(w.next_unit == n_units_, "attention stalled");
    for (const Worker& w : expert_) MSI_CHECK(w.next_unit == n_units_, "expert stalled");

    r.step_ms = now;  // the last event is the last combine's arrival
    r.nominal_attention_ms = *std::max_element(attention_ms_.begin(), attention_ms_.end());
    r.nominal_expert_ms = *std::max_element(expert_ms_.begin(), expert_ms_.end());
    r.closed_form_ms = closed_form_step_ms(r.nominal_attention_ms, r.nominal_expert_ms,
                                           c_.transfer_ms, c_.n_micro_batches, c_.n_layers);
    r.closed_form_holds = closed_form_holds(r.nominal_attention_ms, r.nominal_expert_ms,
                                            c_.transfer_ms, c_.n_micro_batches);
    auto stats = [&](const Worker& w) {
      SimWorkerStats s;
      s.busy_ms = w.busy_ms;
      s.idle_ms = std::max(0.0, r.step_ms - w.busy_ms);
      s.busy_fraction = r.step_ms > 0.0 ? w.busy_ms / r.step_ms : 0.0;
      return s;
    };
    for (const Worker& w : attention_) r.attention.push_back(stats(w));
    for (const Worker& w : expert_) r.expert.push_back(stats(w));
    r.trace = std::move(trace_);
    return r;
  }

 private:
  struct Worker {
    int32_t next_unit = 0;  // the next unit it will run (units run in order)
    bool busy = false;
    double egress_free_ms = 0.0;  // when its link can start the next transfer
    double busy_ms = 0.0;
  };

  // A pure function of (seed, stage, worker, unit), so draws do not depend on event order.
  double jitter(SimSpanKind stage, int32_t worker, int32_t unit) const {
    if (c_.jitter == 0.0) return 1.0;
    uint64_t h = splitmix64(c_.seed);
    h = splitmix64(h ^ static_cast<uint64_t>(stage));
    h = splitmix64(h ^ static_cast<uint64_t>(worker));
    h = splitmix64(h ^ static_cast<uint64_t>(unit));
    const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // [0, 1)
    return 1.0 + c_.jitter * (2.0 * u - 1.0);
  }

  void push(double time, EventKind kind, int32_t worker, int32_t unit) {
    queue_.push(Event{time, seq_++, kind, worker, unit});
  }

  void record(SimSpanKind kind, int32_t worker, int32_t unit, double begin, double end) {
    if (!c_.record_trace) return;
    trace_.push_back(SimSpan{kind, worker, unit / m_, unit % m_, begin, end});
  }

  void try_start_attention(int32_t a, double now) {
    Worker& w = attention_[static_cast<size_t>(a)];
    const int32_t u = w.next_unit;
    if (w.busy || u == n_units_) return;
    // Layer l > 0 of micro-batch i needs the combine of (l-1, i) from every expert worker.
    if (u >= m_ && n_combined_[static_cast<size_t>(u - m_)] < n_e_) return;
    const double dur =
        attention_ms_[static_cast<size_t>(a)] * jitter(SimSpanKind::kAttention, a, u);
    w.busy = true;
    w.busy_ms += dur;
    record(SimSpanKind::kAttention, a, u, now, now + dur);
    push(now + dur, EventKind::kAttentionDone, a, u);
  }

  void try_start_expert(int32_t e, double now) {
    Worker& w = expert_[static_cast<size_t>(e)];
    const int32_t u = w.next_unit;
    if (w.busy || u == n_units_ || n_dispatched_[static_cast<size_t>(u)] < n_a_) return;
    const double dur = expert_ms_[static_cast<size_t>(e)] * jitter(SimSpanKind::kExpert, e, u);
    w.busy = true;
    w.busy_ms += dur;
    record(SimSpanKind::kExpert, e, u, now, now + dur);
    push(now + dur, EventKind::kExpertDone, e, u);
  }

  // One transfer from `w`'s link; returns its arrival time.
  double transfer(Worker& w, SimSpanKind kind, int32_t sender, int32_t unit, double now) {
    const double begin = c_.serialize_transfers ? std::max(now, w.egress_free_ms) : now;
    const double end = begin + c_.transfer_ms * jitter(kind, sender, unit);
    w.egress_free_ms = end;
    record(kind, sender, unit, begin, end);
    return end;
  }

  void on_attention_done(int32_t a, int32_t u, double now) {
    Worker& w = attention_[static_cast<size_t>(a)];
    w.busy = false;
    ++w.next_unit;
    push(transfer(w, SimSpanKind::kDispatch, a, u, now), EventKind::kDispatchArrived, a, u);
    try_start_attention(a, now);
  }

  void on_dispatch_arrived(int32_t u, double now) {
    if (++n_dispatched_[static_cast<size_t>(u)] < n_a_) return;
    for (int32_t e = 0; e < n_e_; ++e) try_start_expert(e, now);
  }

  void on_expert_done(int32_t e, int32_t u, double now) {
    Worker& w = expert_[static_cast<size_t>(e)];
    w.busy = false;
    ++w.next_unit;
    push(transfer(w, SimSpanKind::kCombine, e, u, now), EventKind::kCombineArrived, e, u);
    try_start_expert(e, now);
  }

  void on_combine_arrived(int32_t u, double now) {
    if (++n_combined_[static_cast<size_t>(u)] < n_e_) return;
    for (int32_t a = 0; a < n_a_; ++a) try_start_attention(a, now);
  }

  const SimConfig& c_;
  const int32_t n_a_, n_e_, n_units_, m_;
  std::vector<double> attention_ms_;  // nominal T_a: [n_a]
  std::vector<double> expert_ms_;     // nominal T_e at this worker's load: [n_e]
  std::vector<Worker> attention_, expert_;
  std::vector<int32_t> n_dispatched_, n_combined_;  // arrivals per unit: [n_units]
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  uint64_t seq_ = 0;
  std::vector<SimSpan> trace_;
};

nlohmann::json worker_stats_json(const std::vector<SimWorkerStats>& stats) {
  nlohmann::json busy = nlohmann::json::array(), idle = nlohmann::json::array();
  for (const SimWorkerStats& s : stats) {
    busy.push_back(s.busy_fraction);
    idle.push_back(s.idle_ms);
  }
  return {{"busy_fraction", busy}, {"idle_ms", idle}};
}

}  // namespace

Result<SimResult> simulate_pipeline(const SimConfig& config) {
  MSI_RETURN_IF_ERROR(validate(config));
  return PipelineSim(config).run();
}

nlohmann::json sim_result_json(const SimResult& r) {
  return {{"step_ms", r.step_ms},
          {"closed_form_ms", r.closed_form_ms},
          {"closed_form_holds", r.closed_form_holds},
          {"nominal_attention_ms", r.nominal_attention_ms},
          {"nominal_expert_ms", r.nominal_expert_ms},
          {"n_events", r.n_events},
          {"attention", worker_stats_json(r.attention)},
          {"expert", worker_stats_json(r.expert)}};
}

nlohmann::json sim_trace_events(const SimConfig& config, const SimResult& result) {
  nlohmann::json events = nlohmann::json::array();
  if (result.trace.empty()) return events;
  const int64_t m = config.n_micro_batches;
  const char* kProcessNames[] = {"attention workers", "expert workers", "dispatch", "combine"};
  for (int pid = 0; pid < 4; ++pid) {
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", pid},
                      {"args", {{"name", kProcessNames[pid]}}}});
  }
  auto thread_name = [&](int pid, int64_t tid, const std::string& name) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", pid},
                      {"tid", tid},
                      {"args", {{"name", name}}}});
  };
  for (int64_t a = 0; a < config.n_attention_workers; ++a) {
    thread_name(0, a, fmt::format("attention worker {}", a));
    for (int64_t i = 0; i < m; ++i) {
      thread_name(2, a * m + i, fmt::format("attention {} mb{}", a, i));
    }
  }
  for (int64_t e = 0; e < config.n_expert_workers; ++e) {
    thread_name(1, e, fmt::format("expert worker {}", e));
    for (int64_t i = 0; i < m; ++i) {
      thread_name(3, e * m + i, fmt::format("expert {} mb{}", e, i));
    }
  }
  for (const SimSpan& s : result.trace) {
    const bool compute = s.kind == SimSpanKind::kAttention || s.kind == SimSpanKind::kExpert;
    // NOTE: a sender's transfers of one micro-batch are a round trip apart, so one track per
    // (sender, micro-batch) never holds overlapping spans; one per sender could.
    const int64_t tid = compute ? s.worker : s.worker * m + s.micro_batch;
    events.push_back({
        {"name", fmt::format("{} L{} mb{}", sim_span_kind_name(s.kind), s.layer, s.micro_batch)},
        {"cat", compute ? "compute" : "transfer"},
        {"ph", "X"},
        {"pid", static_cast<int>(s.kind)},
        {"tid", tid},
        {"ts", s.begin_ms * 1e3},
        {"dur", (s.end_ms - s.begin_ms) * 1e3},
        {"args", {{"layer", s.layer}, {"micro_batch", s.micro_batch}}},
    });
  }
  return events;
}

}  // namespace msi

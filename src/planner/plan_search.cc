#include "planner/plan_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace msi::planner {
namespace {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

// The n_a values Algorithm 1 tries for one (tp_a, tp_e, n_e).
std::vector<int> n_attention_candidates(double balance, int n_a_max, NAttentionMode mode) {
  std::vector<int> out;
  if (mode == NAttentionMode::kSweep) {
    for (int n = 1; n <= n_a_max; ++n) out.push_back(n);
    return out;
  }
  const double clamped = std::clamp(balance, 1.0, static_cast<double>(n_a_max));
  const int lo = static_cast<int>(std::floor(clamped)), hi = static_cast<int>(std::ceil(clamped));
  out.push_back(lo);
  if (hi != lo) out.push_back(hi);
  return out;
}

Status check_options(const ModelShape& model, const SearchOptions& o) {
  const auto bad = [](std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  };
  if (!(o.slo_tbt_ms > 0))
    return bad(fmt::format("the TBT SLO must be positive, got {} ms", o.slo_tbt_ms));
  if (o.max_gpus < 1)
    return bad(fmt::format("the GPU limit must be at least 1, got {}", o.max_gpus));
  if (!(o.seq_len > 0))
    return bad(fmt::format("the sequence length must be positive, got {}", o.seq_len));
  if (o.min_micro_batches < 1 || o.max_micro_batches < o.min_micro_batches) {
    return bad(fmt::format("micro-batches must satisfy 1 <= min ({}) <= max ({})",
                           o.min_micro_batches, o.max_micro_batches));
  }
  if (!(o.memory_fraction > 0) || o.memory_fraction > 1) {
    return bad(fmt::format("the memory fraction must be in (0, 1], got {}", o.memory_fraction));
  }
  if (o.max_batch < 1)
    return bad(fmt::format("the batch limit must be at least 1, got {}", o.max_batch));
  if (model.n_experts < 1 || model.n_moe_layers < 1) {
    return bad(fmt::format("model {} has no routed experts to place", model.name));
  }
  return Status::ok();
}

}  // namespace

bool better_candidate(const Candidate& a, const Candidate& b) {
  const Prediction& x = a.predicted;
  const Prediction& y = b.predicted;
  // NOTE: exact comparisons keep this a strict weak ordering, as std::sort requires.
  if (x.tokens_per_s_per_cost != y.tokens_per_s_per_cost) {
    return x.tokens_per_s_per_cost > y.tokens_per_s_per_cost;
  }
  if (x.tokens_per_s != y.tokens_per_s) return x.tokens_per_s > y.tokens_per_s;
  return x.n_gpus < y.n_gpus;
}

namespace {

// The largest batch in [1, max_batch] whose prediction (from `predict`) is feasible. Memory and
// the SLO only tighten as the batch grows. The communication conditions (`comm_ok`) can instead
// fail at small batches — a fixed per-message latency against a short T_f — and hold from some
// batch on (T_c/T_f is a ratio of two affine functions of the batch, so it is monotone): then the
// search bisects for the first batch where they hold, and from there for the last feasible one.
template <typename Predict, typename CommOk>
std::optional<Prediction> largest_feasible(const Predict& predict, const CommOk& comm_ok,
                                           int64_t max_batch, int64_t& batch, std::string* why) {
  Prediction best = predict(1);
  int64_t lo = 1;
  if (!best.feasible()) {
    Prediction last = predict(max_batch);
    if (comm_ok(best) || !comm_ok(last)) {
      if (why) *why = best.violation;
      return std::nullopt;
    }
    int64_t fail = 1, ok = max_batch;  // comm_ok(fail) is false, comm_ok(ok) true
    while (ok - fail > 1) {
      const int64_t mid = fail + (ok - fail) / 2;
      (comm_ok(predict(mid)) ? ok : fail) = mid;
    }
    best = predict(ok);
    if (!best.feasible()) {  // by then memory or the SLO rules it out
      if (why) *why = best.violation;
      return std::nullopt;
    }
    lo = ok;
  }
  int64_t hi = max_batch;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    Prediction p = predict(mid);
    if (p.feasible()) {
      lo = mid;
      best = std::move(p);
    } else {
      hi = mid - 1;
    }
  }
  batch = lo;
  return best;
}

}  // namespace

std::optional<Prediction> best_batch(const DisaggregatedSetup& setup, DisaggregatedShape& shape,
                                     double slo_ms, int64_t max_batch, std::string* why) {
  DisaggregatedShape x = shape;
  const auto predict = [&](int64_t b) {
    x.b_a = static_cast<double>(b);
    return predict_disaggregated(setup, x, slo_ms);
  };
  const auto comm_ok = [&](const Prediction& p) {
    return pipeline_hides_communication(p.t_f_ms, p.t_c_ms, x.m);
  };
  int64_t b = 1;
  auto best = largest_feasible(predict, comm_ok, max_batch, b, why);
  shape.b_a = static_cast<double>(b);
  return best;
}

std::optional<Prediction> best_batch(const ColocatedSetup& setup, int64_t& b, double slo_ms,
                                     int64_t max_batch, std::string* why) {
  const auto predict = [&](int64_t batch) {
    return predict_colocated(setup, static_cast<double>(batch), slo_ms);
  };
  b = 1;
  return largest_feasible(
      predict, [](const Prediction&) { return true; }, max_batch, b, why);
}

std::vector<Candidate> search_disaggregated(const ModelShape& model, const GpuSide& attention,
                                            const GpuSide& expert, const SearchOptions& o) {
  std::vector<Candidate> out;
  const double expert_usable = expert.memory_gib() * o.memory_fraction;
  for (int tp_e : expert.profile.expert_tps()) {
    for (int64_t n_e : divisors(model.n_experts)) {
      if (n_e * tp_e >= o.max_gpus) continue;  // leaves no GPU for attention
      const int64_t g = model.n_experts / n_e;
      if (model.expert_bytes(g, tp_e) / (1024.0 * 1024 * 1024) > expert_usable) continue;
      for (int tp_a : attention.profile.attention_tps()) {
        auto setup = make_disaggregated_setup(model, o.seq_len, attention, expert, tp_a, tp_e,
                                              o.memory_fraction);
        if (!setup.is_ok()) continue;
        const int n_a_max = static_cast<int>((o.max_gpus - n_e * tp_e) / tp_a);
        const double balance = balanced_n_attention(setup->attention.k1_ms, setup->expert.k3_ms,
                                                    model.n_experts, model.top_k, g);
        for (int n_a : n_attention_candidates(balance, n_a_max, o.n_attention_mode)) {
          std::optional<Candidate> best;
          for (int m = o.min_micro_batches; m <= o.max_micro_batches; ++m) {
            DisaggregatedShape shape{n_a, static_cast<int>(n_e), m, 1};
            auto p = best_batch(*setup, shape, o.slo_tbt_ms, o.max_batch);
            if (!p) continue;
            Candidate c{PlanKind::kDisaggregated,
                        attention.spec.name,
                        expert.spec.name,
                        tp_a,
                        tp_e,
                        n_a,
                        static_cast<int>(n_e),
                        m,
                        static_cast<int64_t>(shape.b_a),
                        balance,
                        std::move(*p)};
            if (!best || better_candidate(c, *best)) best = std::move(c);
          }
          if (best) out.push_back(std::move(*best));
        }
      }
    }
  }
  std::sort(out.begin(), out.end(), better_candidate);
  return out;
}

std::vector<Candidate> search_colocated(const ModelShape& model, const GpuSide& gpu,
                                        const SearchOptions& o) {
  std::vector<Candidate> out;
  for (int n_gpus = 1; n_gpus <= o.max_gpus; ++n_gpus) {
    if (model.n_experts % n_gpus != 0 && n_gpus % model.n_experts != 0) continue;
    for (int tp_a : gpu.profile.attention_tps()) {
      if (n_gpus % tp_a != 0) continue;
      auto setup = make_colocated_setup(model, o.seq_len, gpu, n_gpus, tp_a, o.memory_fraction);
      if (!setup.is_ok()) continue;
      int64_t b = 1;
      auto p = best_batch(*setup, b, o.slo_tbt_ms, o.max_batch);
      if (!p) continue;
      out.push_back({PlanKind::kColocated, gpu.spec.name, gpu.spec.name, tp_a, setup->tp_e,
                     n_gpus / tp_a, n_gpus / setup->tp_e, 1, b, 0, std::move(*p)});
    }
  }
  std::sort(out.begin(), out.end(), better_candidate);
  return out;
}

const Candidate* SearchResult::best() const {
  const Candidate* d = disaggregated.empty() ? nullptr : &disaggregated.front();
  const Candidate* c = colocated.empty() ? nullptr : &colocated.front();
  if (!d || !c) return d ? d : c;
  return better_candidate(*c, *d) ? c : d;
}

namespace {

// Why nothing fits: among the smallest layouts (one attention worker, one sequence per
// micro-batch, every tp and expert split), the constraint violated by the one closest to the SLO.
std::string explain_infeasible(const ModelShape& model, const std::vector<GpuSide>& attention,
                               const std::vector<GpuSide>& expert, const SearchOptions& o) {
  std::string why = fmt::format("no expert layout fits within {} GPUs", o.max_gpus);
  double best_tbt = std::numeric_limits<double>::infinity();
  for (const GpuSide& a : attention) {
    for (const GpuSide& e : expert) {
      for (int tp_e : e.profile.expert_tps()) {
        for (int tp_a : a.profile.attention_tps()) {
          for (int64_t n_e : divisors(model.n_experts)) {
            if (n_e * tp_e + tp_a > o.max_gpus) continue;
            auto s =
                make_disaggregated_setup(model, o.seq_len, a, e, tp_a, tp_e, o.memory_fraction);
            if (!s.is_ok()) continue;
            const int m = std::min(std::max(3, o.min_micro_batches), o.max_micro_batches);
            const DisaggregatedShape x{1, static_cast<int>(n_e), m, 1};
            const Prediction p = predict_disaggregated(*s, x, o.slo_tbt_ms);
            if (p.feasible() || p.tbt_ms >= best_tbt) continue;
            best_tbt = p.tbt_ms;
            why = fmt::format(
                "{} attention (tp {}) + {} experts ({} workers, tp {}), one sequence "
                "per micro-batch: {}",
                a.spec.name, tp_a, e.spec.name, n_e, tp_e, p.violation);
          }
        }
      }
    }
  }
  return why;
}

}  // namespace

Result<SearchResult> search_plans(const ModelShape& model, const std::vector<GpuSide>& attention,
                                  const std::vector<GpuSide>& expert, const SearchOptions& o) {
  MSI_RETURN_IF_ERROR(check_options(model, o));
  if (attention.empty() || expert.empty()) {
    return error(StatusCode::kInvalidArgument, "need at least one attention and one expert GPU");
  }
  SearchResult r;
  for (const GpuSide& a : attention) {
    for (const GpuSide& e : expert) {
      auto c = search_disaggregated(model, a, e, o);
      r.disaggregated.insert(r.disaggregated.end(), std::make_move_iterator(c.begin()),
                             std::make_move_iterator(c.end()));
    }
  }
  std::sort(r.disaggregated.begin(), r.disaggregated.end(), better_candidate);
  if (o.colocated) {
    std::vector<std::string> seen;
    for (const auto* list : {&attention, &expert}) {
      for (const GpuSide& g : *list) {
        if (std::find(seen.begin(), seen.end(), g.spec.name) != seen.end()) continue;
        seen.push_back(g.spec.name);
        auto c = search_colocated(model, g, o);
        r.colocated.insert(r.colocated.end(), std::make_move_iterator(c.begin()),
                           std::make_move_iterator(c.end()));
      }
    }
    std::sort(r.colocated.begin(), r.colocated.end(), better_candidate);
  }
  if (!r.best()) {
    return error(StatusCode::kInvalidArgument,
                 "no deployment of {} meets the constraints (TBT SLO {} ms, at most {} GPUs, "
                 "average context {} tokens); closest: {}",
                 model.name, o.slo_tbt_ms, o.max_gpus, o.seq_len,
                 explain_infeasible(model, attention, expert, o));
  }
  return r;
}

DeploymentPlan to_deployment_plan(const Candidate& c, const ModelShape& model,
                                  const SearchOptions& o) {
  DeploymentPlan p;
  p.kind = c.kind;
  p.model = model.name;
  p.attention_gpu = c.attention_gpu;
  p.expert_gpu = c.expert_gpu;
  p.tp_a = c.tp_a;
  p.tp_e = c.tp_e;
  p.n_attention_workers = c.n_a;
  p.n_expert_workers = c.n_e;
  p.n_micro_batches = c.m;
  p.micro_batch_size = c.b_a;
  p.max_num_seqs = c.b_a * c.m;
  p.avg_seq_len = o.seq_len;
  p.slo_tbt_ms = o.slo_tbt_ms;
  p.has_prediction = true;
  const Prediction& q = c.predicted;
  p.predicted = {q.t_a_ms,
                 q.t_e_ms,
                 q.t_c_ms,
                 q.tbt_ms,
                 q.global_batch,
                 q.tokens_per_s,
                 q.tokens_per_s_per_gpu,
                 q.tokens_per_s_per_cost,
                 q.n_gpus,
                 q.cost};
  return p;
}

}  // namespace msi::planner

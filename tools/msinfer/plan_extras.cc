#include "plan_extras.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "planner/expert_balance.h"
#include "planner/pipeline_sim.h"

namespace msi::cli {

using nlohmann::json;
using namespace msi::planner;

Result<PredictSpec> parse_predict_spec(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string p;
  while (std::getline(ss, p, ':')) parts.push_back(p);
  auto number = [&](size_t i) -> Result<int> {
    try {
      size_t used = 0;
      const int v = std::stoi(parts[i], &used);
      if (used == parts[i].size() && v >= 1) return v;
    } catch (const std::exception&) {
    }
    return error(StatusCode::kInvalidArgument, "--predict: '{}' in '{}' is not a positive count",
                 parts[i], text);
  };
  PredictSpec s;
  if (parts.size() == 2 && parts[0] == "colocated") {
    MSI_ASSIGN_OR_RETURN(s.n_gpus, number(1));
    return s;
  }
  if (parts.size() == 3 && parts[0] == "disaggregated") {
    s.disaggregated = true;
    MSI_ASSIGN_OR_RETURN(s.n_a, number(1));
    MSI_ASSIGN_OR_RETURN(s.n_e, number(2));
    s.n_gpus = s.n_a + s.n_e;
    return s;
  }
  return error(
      StatusCode::kInvalidArgument,
      "--predict takes colocated:GPUS or disaggregated:ATTENTION_GPUS:EXPERT_GPUS, got '{}'", text);
}

namespace {

json prediction_json(const Prediction& p) {
  return {{"t_a_ms", p.t_a_ms},
          {"t_e_ms", p.t_e_ms},
          {"t_c_ms", p.t_c_ms},
          {"t_f_ms", p.t_f_ms},
          {"tbt_ms", p.tbt_ms},
          {"b_e", p.b_e},
          {"global_batch", p.global_batch},
          {"tokens_per_s", p.tokens_per_s},
          {"tokens_per_s_per_gpu", p.tokens_per_s_per_gpu},
          {"tokens_per_s_per_cost", p.tokens_per_s_per_cost},
          {"n_gpus", p.n_gpus},
          {"attention_gib", p.attention_gib},
          {"expert_gib", p.expert_gib},
          {"feasible", p.feasible()},
          {"violation", p.violation}};
}

}  // namespace

Result<json> simulate_prediction(const ModelShape& model, const Prediction& p, int n_a, int n_e,
                                 int m, double b_a) {
  SimConfig c;
  c.n_layers = model.n_layers;
  c.n_micro_batches = m;
  c.n_attention_workers = n_a;
  c.n_expert_workers = n_e;
  c.attention_ms = p.t_a_ms;
  c.expert_cost = {0.0, p.t_e_ms};
  c.tokens_per_micro_batch = std::max<int64_t>(1, static_cast<int64_t>(std::llround(b_a)));
  c.top_k = model.top_k;
  c.transfer_ms = p.t_c_ms;
  c.jitter = 0.05;  // ±5% per stage: what kernel timings vary by
  c.seed = 1;
  MSI_ASSIGN_OR_RETURN(SimResult r, simulate_pipeline(c));
  return json{{"step_ms", r.step_ms},
              {"closed_form_ms", r.closed_form_ms},
              {"closed_form_holds", r.closed_form_holds},
              {"jitter", c.jitter},
              {"attention_busy", r.attention.empty() ? 0.0 : r.attention[0].busy_fraction},
              {"expert_busy", r.expert.empty() ? 0.0 : r.expert[0].busy_fraction}};
}

Result<json> predict_deployment(const ModelShape& model, const GpuSide& attention,
                                const GpuSide& expert, const PredictArgs& a) {
  if (a.batch_size < 1)
    return error(StatusCode::kInvalidArgument, "--predict needs --batch-size (sequences)");
  json out = {{"deployment", a.spec.disaggregated ? "disaggregated" : "colocated"},
              {"batch_size", a.batch_size},
              {"seq_len", a.seq_len},
              {"attention_gpu", attention.spec.name}};
  if (!a.spec.disaggregated) {
    MSI_ASSIGN_OR_RETURN(
        ColocatedSetup setup,
        make_colocated_setup(model, a.seq_len, attention, a.spec.n_gpus, 1, a.memory_fraction));
    const double b = static_cast<double>(a.batch_size) / a.spec.n_gpus;
    out["n_gpus"] = a.spec.n_gpus;
    out["predicted"] = prediction_json(predict_colocated(setup, b, a.slo_ms));
    return out;
  }
  if (a.micro_batches < 1)
    return error(StatusCode::kInvalidArgument, "--micro-batches must be at least 1");
  MSI_ASSIGN_OR_RETURN(
      DisaggregatedSetup setup,
      make_disaggregated_setup(model, a.seq_len, attention, expert, 1, 1, a.memory_fraction));
  DisaggregatedShape shape;
  shape.n_a = a.spec.n_a;
  shape.n_e = a.spec.n_e;
  shape.m = a.micro_batches;
  shape.b_a = static_cast<double>(a.batch_size) / (a.spec.n_a * a.micro_batches);
  const Prediction p = predict_disaggregated(setup, shape, a.slo_ms);
  out["expert_gpu"] = expert.spec.name;
  out["n_attention"] = shape.n_a;
  out["n_expert"] = shape.n_e;
  out["micro_batches"] = shape.m;
  out["b_a"] = shape.b_a;
  out["predicted"] = prediction_json(p);
  MSI_ASSIGN_OR_RETURN(out["simulated"],
                       simulate_prediction(model, p, shape.n_a, shape.n_e, shape.m, shape.b_a));
  return out;
}

Result<json> propose_placement(const std::string& load_file, int n_expert_workers,
                               int slots_per_worker) {
  if (n_expert_workers < 1)
    return error(StatusCode::kInvalidArgument, "--expert-workers must be at least 1");
  MSI_ASSIGN_OR_RETURN(ExpertLoadStats load, read_expert_load_file(load_file));
  BalanceOptions o;
  o.n_expert_workers = n_expert_workers;
  o.slots_per_worker = slots_per_worker;
  MSI_ASSIGN_OR_RETURN(BalanceResult r, balance_experts(load, o));
  return balance_report_json(r);
}

}  // namespace msi::cli

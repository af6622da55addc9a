#include "planner/deployment_plan.h"
#include "planner/json_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "model/config.h"

namespace msi::planner {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "msinfer-deployment-plan";

// The plan's fields ("plan field 'tp_a' must be an integer >= 1, got 0", "plan has no 'kind'").
struct Reader : FieldReader {
  Reader(const json& obj, std::string prefix = "") : FieldReader(obj, "plan", std::move(prefix)) {}
  Result<double> number(std::string_view key, double fallback) const {
    return FieldReader::number(key, 0, false, fallback);
  }
};

bool same_name(std::string a, std::string b) {
  const auto low = [](std::string& s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  };
  low(a);
  low(b);
  return a == b;
}

}  // namespace

const char* plan_kind_name(PlanKind kind) {
  return kind == PlanKind::kColocated ? "colocated" : "disaggregated";
}

json deployment_plan_to_json(const DeploymentPlan& p) {
  json j = {{"format", kFormat},
            {"version", 1},
            {"kind", plan_kind_name(p.kind)},
            {"model", p.model},
            {"attention_gpu", p.attention_gpu},
            {"expert_gpu", p.expert_gpu},
            {"tp_a", p.tp_a},
            {"tp_e", p.tp_e},
            {"n_attention_workers", p.n_attention_workers},
            {"n_expert_workers", p.n_expert_workers},
            {"n_micro_batches", p.n_micro_batches},
            {"micro_batch_size", p.micro_batch_size},
            {"max_num_seqs", p.max_num_seqs},
            {"avg_seq_len", p.avg_seq_len},
            {"slo_tbt_ms", p.slo_tbt_ms}};
  if (p.has_prediction) {
    const PlanPrediction& q = p.predicted;
    j["predicted"] = {{"t_a_ms", q.t_a_ms},
                      {"t_e_ms", q.t_e_ms},
                      {"t_c_ms", q.t_c_ms},
                      {"tbt_ms", q.tbt_ms},
                      {"global_batch", q.global_batch},
                      {"tokens_per_s", q.tokens_per_s},
                      {"tokens_per_s_per_gpu", q.tokens_per_s_per_gpu},
                      {"tokens_per_s_per_cost", q.tokens_per_s_per_cost},
                      {"n_gpus", q.n_gpus},
                      {"cost", q.cost}};
  }
  return j;
}

Result<DeploymentPlan> deployment_plan_from_json(const json& j) {
  if (!j.is_object()) {
    return error(StatusCode::kInvalidArgument, "a plan must be a JSON object, got {}",
                 j.type_name());
  }
  const Reader r(j);
  MSI_ASSIGN_OR_RETURN(std::string format, r.string("format"));
  if (format != kFormat) return r.bad("format", fmt::format("\"{}\"", kFormat));
  MSI_ASSIGN_OR_RETURN(int64_t version, r.integer("version", 1));
  if (version != 1) return r.bad("version", "1");

  DeploymentPlan p;
  MSI_ASSIGN_OR_RETURN(std::string kind, r.string("kind"));
  if (kind == "disaggregated") {
    p.kind = PlanKind::kDisaggregated;
  } else if (kind == "colocated") {
    p.kind = PlanKind::kColocated;
  } else {
    return r.bad("kind", "\"disaggregated\" or \"colocated\"");
  }
  MSI_ASSIGN_OR_RETURN(p.model, r.string("model", /*required=*/false));
  MSI_ASSIGN_OR_RETURN(p.attention_gpu, r.string("attention_gpu"));
  MSI_ASSIGN_OR_RETURN(p.expert_gpu, r.string("expert_gpu"));
  if (p.attention_gpu.empty()) return r.bad("attention_gpu", "a GPU name");
  if (p.expert_gpu.empty()) return r.bad("expert_gpu", "a GPU name");
  MSI_ASSIGN_OR_RETURN(p.tp_a, r.integer("tp_a", 1));
  MSI_ASSIGN_OR_RETURN(p.tp_e, r.integer("tp_e", 1));
  MSI_ASSIGN_OR_RETURN(p.n_attention_workers, r.integer("n_attention_workers", 1));
  MSI_ASSIGN_OR_RETURN(p.n_expert_workers, r.integer("n_expert_workers", 1));
  MSI_ASSIGN_OR_RETURN(p.n_micro_batches, r.integer("n_micro_batches", 1));
  MSI_ASSIGN_OR_RETURN(p.max_num_seqs, r.integer("max_num_seqs", 1));
  const int64_t even_split = (p.max_num_seqs + p.n_micro_batches - 1) / p.n_micro_batches;
  MSI_ASSIGN_OR_RETURN(p.micro_batch_size, r.integer("micro_batch_size", 1, even_split));
  MSI_ASSIGN_OR_RETURN(p.avg_seq_len, r.number("avg_seq_len", 0));
  MSI_ASSIGN_OR_RETURN(p.slo_tbt_ms, r.number("slo_tbt_ms", 0));
  if (p.micro_batch_size * p.n_micro_batches < p.max_num_seqs) {
    return r.bad("max_num_seqs", fmt::format("at most n_micro_batches × micro_batch_size = {}",
                                             p.micro_batch_size * p.n_micro_batches));
  }
  if (p.kind == PlanKind::kColocated) {
    if (!same_name(p.attention_gpu, p.expert_gpu)) {
      return r.bad("expert_gpu",
                   fmt::format("the attention_gpu \"{}\" in a colocated plan", p.attention_gpu));
    }
    if (p.n_attention_workers * p.tp_a != p.n_expert_workers * p.tp_e) {
      return r.bad("n_expert_workers",
                   fmt::format("such that n_expert_workers × tp_e = n_attention_workers × tp_a "
                               "= {} in a colocated plan",
                               p.n_attention_workers * p.tp_a));
    }
  }
  if (const json* q = r.find("predicted")) {
    if (!q->is_object()) return r.bad("predicted", "an object");
    const Reader pr(*q, "predicted.");
    PlanPrediction& x = p.predicted;
    MSI_ASSIGN_OR_RETURN(x.t_a_ms, pr.number("t_a_ms", 0));
    MSI_ASSIGN_OR_RETURN(x.t_e_ms, pr.number("t_e_ms", 0));
    MSI_ASSIGN_OR_RETURN(x.t_c_ms, pr.number("t_c_ms", 0));
    MSI_ASSIGN_OR_RETURN(x.tbt_ms, pr.number("tbt_ms", 0));
    MSI_ASSIGN_OR_RETURN(x.global_batch, pr.number("global_batch", 0));
    MSI_ASSIGN_OR_RETURN(x.tokens_per_s, pr.number("tokens_per_s", 0));
    MSI_ASSIGN_OR_RETURN(x.tokens_per_s_per_gpu, pr.number("tokens_per_s_per_gpu", 0));
    MSI_ASSIGN_OR_RETURN(x.tokens_per_s_per_cost, pr.number("tokens_per_s_per_cost", 0));
    MSI_ASSIGN_OR_RETURN(x.n_gpus, pr.integer("n_gpus", 0, 0));
    MSI_ASSIGN_OR_RETURN(x.cost, pr.number("cost", 0));
    p.has_prediction = true;
  }
  return p;
}

Result<DeploymentPlan> load_deployment_plan(const std::filesystem::path& path) {
  MSI_ASSIGN_OR_RETURN(json j, read_json_file(path));
  auto plan = deployment_plan_from_json(j);
  if (!plan.is_ok()) return plan.status().with_context(path.string());
  return plan;
}

Status save_deployment_plan(const DeploymentPlan& plan, const std::filesystem::path& path) {
  std::ofstream out(path);
  out << deployment_plan_to_json(plan).dump(2) << "\n";
  out.close();
  if (!out) return error(StatusCode::kIoError, "cannot write {}", path.string());
  return Status::ok();
}

}  // namespace msi::planner

// msinfer plan: chooses a deployment with MegaScale-Infer's performance model and Algorithm 1
// (planner/plan_search.h) — which GPU type runs attention and which runs experts, tensor
// parallelism, worker counts, micro-batches and batch — for the best tokens/s per cost under a
// TBT SLO, and scores colocated deployments on each GPU type beside it. Coefficients come from
// --profile files (measured by `msinfer profile`) or, for GPUs without one, from a roofline
// estimate of the GPU catalog. Prints a table (or with --json the result object) on stdout;
// --out writes the chosen plan, which the engine loads with --plan. Exits 1 on a bad model,
// GPU, profile or option, or when no deployment fits.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "model/config.h"
#include "plan_extras.h"
#include "planner/gpu_catalog.h"
#include "planner/hardware_profile.h"
#include "planner/plan_search.h"

namespace msi::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace msi::planner;

struct PlanArgs {
  std::string model;
  std::string attention_gpu, expert_gpu;
  std::string slo_tbt = "150ms";
  std::vector<std::string> profiles;
  std::vector<std::string> prices;
  std::string n_attention = "sweep";
  SearchOptions search;
  int top = 5;
  bool json = false;
  std::string out;
  // --predict / --simulate / --expert-load (plan_extras.h)
  std::string predict;
  int64_t batch_size = 0;
  int micro_batches = 2;
  bool simulate = false;
  std::string expert_load;
  int expert_workers = 0;
  int slots_per_worker = 0;
  int layers = 0;
};

int write_json_out(const std::string& path, const json& j) {
  if (path.empty()) return 0;
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  return f ? 0 : fail("cannot write " + path);
}

// --expert-load: the placement report, and --out the file --expert-placement loads.
int run_expert_load(const PlanArgs& a) {
  if (a.expert_workers < 1) return fail("--expert-load needs --expert-workers N (the expert workers to place on)");
  auto report = propose_placement(a.expert_load, a.expert_workers, a.slots_per_worker);
  if (!report.is_ok()) return fail(report.status().message());
  if (int rc = write_json_out(a.out, *report); rc != 0) return rc;
  std::cout << report->dump(2) << "\n" << std::flush;
  return std::cout ? 0 : fail("cannot write to stdout");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "150ms", "0.15s" or a bare number of milliseconds.
Result<double> parse_ms(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit = end ? std::string(end) : "";
  double ms = v;
  if (unit == "s") {
    ms = v * 1000;
  } else if (unit != "ms" && !unit.empty()) {
    ms = -1;
  }
  if (text.empty() || end == text.c_str() || !(ms > 0)) {
    return error(StatusCode::kInvalidArgument,
                 "--slo-tbt must be a positive duration like 150ms or 0.15s, got '{}'", text);
  }
  return ms;
}

// `layers` > 0 overrides num_hidden_layers (to predict a truncated model, as benchmarked).
Result<ModelConfig> load_config(const std::string& path, int layers) {
  const json overrides = {{"num_hidden_layers", layers}};
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_model_config(path, layers > 0 ? &overrides : nullptr);
  if (!fs::exists(path, ec)) {
    return error(StatusCode::kNotFound, "--model {}: no such file or directory", path);
  }
  MSI_ASSIGN_OR_RETURN(json j, read_json_file(path));
  if (layers > 0) j["num_hidden_layers"] = layers;
  auto config = parse_model_config(j);
  if (!config.is_ok()) return config.status().with_context(path);
  return config;
}

// GPU name → its side: a --profile for it when given, else the catalog's roofline estimate.
Result<std::vector<GpuSide>> resolve_gpus(const std::string& list, const ModelConfig& config,
                                          const std::vector<HardwareProfile>& profiles,
                                          const std::map<std::string, double>& prices) {
  std::vector<GpuSide> out;
  if (list.find_first_not_of(" ,") == std::string::npos) {
    return error(StatusCode::kInvalidArgument, "empty GPU list (known GPUs: {})",
                 known_gpu_names());
  }
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, comma - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    start = comma + 1;
    if (name.empty()) return error(StatusCode::kInvalidArgument, "empty GPU name in '{}'", list);
    GpuSide side;
    auto spec = find_gpu(name);
    const HardwareProfile* profile = nullptr;
    for (const auto& p : profiles) {
      if (lower(p.gpu) == lower(name)) profile = &p;
    }
    if (spec.is_ok()) {
      side.spec = *spec;
    } else if (profile && profile->memory_gib > 0 && profile->price > 0) {
      side.spec.name = profile->gpu;  // a GPU the catalog lacks: its profile carries the rest
      side.spec.source = "profile";
    } else {
      return profile ? error(StatusCode::kInvalidArgument,
                             "GPU '{}' is not in the catalog, so its profile needs memory_gib and "
                             "price",
                             name)
                     : spec.status();
    }
    if (auto it = prices.find(lower(side.spec.name)); it != prices.end()) {
      side.spec.price = it->second;
      side.spec.price_is_estimate = false;
    }
    side.profile = profile ? *profile : estimate_profile(side.spec, config);
    const bool seen = std::any_of(out.begin(), out.end(),
                                  [&](const GpuSide& o) { return o.spec.name == side.spec.name; });
    if (!seen) out.push_back(std::move(side));
  }
  return out;
}

Result<std::map<std::string, double>> parse_prices(const std::vector<std::string>& items) {
  std::map<std::string, double> out;
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    char* end = nullptr;
    const double v = eq == std::string::npos ? 0 : std::strtod(item.c_str() + eq + 1, &end);
    if (eq == std::string::npos || end == item.c_str() + eq + 1 || *end != '\0' || !(v > 0)) {
      return error(StatusCode::kInvalidArgument,
                   "--price must be NAME=VALUE with a positive value, e.g. H20=1.85, got '{}'",
                   item);
    }
    out[lower(item.substr(0, eq))] = v;
  }
  return out;
}

json candidate_json(const Candidate& c, const ModelShape& model, const SearchOptions& o) {
  json j = deployment_plan_to_json(to_deployment_plan(c, model, o));
  if (c.kind == PlanKind::kDisaggregated) j["n_a_balance"] = c.n_a_balance;
  j["predicted"]["b_e"] = c.predicted.b_e;
  j["predicted"]["attention_gib"] = c.predicted.attention_gib;
  j["predicted"]["expert_gib"] = c.predicted.expert_gib;
  return j;
}

// The best colocated candidate of each GPU type, best first.
std::vector<const Candidate*> best_colocated_per_gpu(const SearchResult& r) {
  std::vector<const Candidate*> out;
  for (const Candidate& c : r.colocated) {
    const bool seen = std::any_of(out.begin(), out.end(), [&](const Candidate* o) {
      return o->attention_gpu == c.attention_gpu;
    });
    if (!seen) out.push_back(&c);
  }
  return out;
}

std::string row(int rank, const Candidate& c) {
  const Prediction& p = c.predicted;
  const bool dis = c.kind == PlanKind::kDisaggregated;
  return fmt::format(
      "{:>4} {:<6} {:<6} {:<6} {:>4} {:>4} {:>4} {:>4} {:>3} {:>5} {:>6} {:>7.3f} {:>7.3f} "
      "{:>7.3f} {:>7.1f} {:>6.0f} {:>9.0f} {:>8.1f} {:>8.1f}\n",
      rank > 0 ? std::to_string(rank) : "-", dis ? "disagg" : "coloc", c.attention_gpu,
      dis ? c.expert_gpu : "-", c.tp_a, c.tp_e, c.n_a, c.n_e, c.m, c.b_a,
      dis ? fmt::format("{:.1f}", c.n_a_balance) : "-", p.t_a_ms, p.t_e_ms, p.t_c_ms, p.tbt_ms,
      p.global_batch, p.tokens_per_s, p.tokens_per_s_per_gpu, p.tokens_per_s_per_cost);
}

std::string gpu_line(const char* role, const std::vector<GpuSide>& gpus) {
  std::string out = fmt::format("{:<10}", role);
  for (size_t i = 0; i < gpus.size(); ++i) {
    const GpuSide& g = gpus[i];
    out += fmt::format("{}{} ({}, price {:.2f}{})", i ? "; " : "", g.spec.name, g.profile.source,
                       g.price(), g.spec.price_is_estimate ? ", estimated" : "");
  }
  return out + "\n";
}

std::string table(const SearchResult& r, const ModelShape& model, const SearchOptions& o,
                  const std::vector<GpuSide>& attention, const std::vector<GpuSide>& expert,
                  int top) {
  std::string out = fmt::format(
      "model     {} ({} layers, hidden {}, {} experts, top-{}), average context {} tokens\n"
      "limits    TBT <= {} ms, at most {} GPUs, micro-batches {}..{}\n",
      model.name, model.n_layers, model.hidden, model.n_experts, model.top_k, o.seq_len,
      o.slo_tbt_ms, o.max_gpus, o.min_micro_batches, o.max_micro_batches);
  out += gpu_line("attention", attention) + gpu_line("experts", expert);
  const Candidate& best = *r.best();
  const Prediction& p = best.predicted;
  if (best.kind == PlanKind::kDisaggregated) {
    out += fmt::format(
        "\nchosen    disaggregated: {} x {} attention (tp {}) + {} x {} experts (tp {}), {} "
        "micro-batches of {} sequences per attention worker\n",
        best.n_a, best.attention_gpu, best.tp_a, best.n_e, best.expert_gpu, best.tp_e, best.m,
        best.b_a);
  } else {
    out += fmt::format(
        "\nchosen    colocated: {} x {} (attention tp {}, experts over {} shards), "
        "{} sequences per attention group\n",
        p.n_gpus, best.attention_gpu, best.tp_a, best.n_e, best.b_a);
  }
  out += fmt::format(
      "          TBT {:.1f} ms, {:.0f} tokens/s on {} GPUs: {:.1f} per GPU, {:.1f} "
      "per unit of price\n",
      p.tbt_ms, p.tokens_per_s, p.n_gpus, p.tokens_per_s_per_gpu, p.tokens_per_s_per_cost);
  out += fmt::format(
      "\n{:>4} {:<6} {:<6} {:<6} {:>4} {:>4} {:>4} {:>4} {:>3} {:>5} {:>6} {:>7} {:>7} {:>7} "
      "{:>7} {:>6} {:>9} {:>8} {:>8}\n",
      "rank", "kind", "attn", "expert", "tp_a", "tp_e", "n_a", "n_e", "m", "b_a", "n_a*", "T_a ms",
      "T_e ms", "T_c ms", "TBT ms", "batch", "tokens/s", "/GPU", "/cost");
  for (int i = 0; i < top && i < static_cast<int>(r.disaggregated.size()); ++i) {
    out += row(i + 1, r.disaggregated[static_cast<size_t>(i)]);
  }
  if (r.disaggregated.empty()) out += "   (no disaggregated deployment fits)\n";
  const auto colocated = best_colocated_per_gpu(r);
  for (const Candidate* c : colocated) out += row(0, *c);
  if (o.colocated && colocated.empty()) out += "   (no colocated deployment fits)\n";
  if (!r.disaggregated.empty() && !colocated.empty()) {
    const Candidate& d = r.disaggregated.front();
    const Candidate& c = *colocated.front();
    out += fmt::format(
        "\ndisaggregation: {:.2f}x the tokens/s per cost of the best colocated deployment ({} x "
        "{})\n",
        d.predicted.tokens_per_s_per_cost / c.predicted.tokens_per_s_per_cost, c.predicted.n_gpus,
        c.attention_gpu);
  }
  out +=
      "\nn_a*: the balance condition's n_a = k1·E/(k3·K·g); T_a, T_e, T_c per layer and "
      "micro-batch; /cost: tokens/s per unit of normalized price (L20 = 1)\n";
  return out;
}

int run_plan(PlanArgs a) {
  if (!a.expert_load.empty()) return run_expert_load(a);
  if (a.attention_gpu.empty()) return fail("--attention-gpu is required");
  if (a.expert_gpu.empty()) {
    if (a.predict.empty()) return fail("--expert-gpu is required");
    a.expert_gpu = a.attention_gpu;  // --predict: the same GPU type on both sides by default
  }
  auto slo = parse_ms(a.slo_tbt);
  if (!slo.is_ok()) return fail(slo.status().message());
  a.search.slo_tbt_ms = *slo;
  if (a.n_attention == "sweep") {
    a.search.n_attention_mode = NAttentionMode::kSweep;
  } else if (a.n_attention == "balance") {
    a.search.n_attention_mode = NAttentionMode::kBalance;
  } else {
    return fail("--n-attention must be sweep or balance, got '" + a.n_attention + "'");
  }
  if (a.top < 1) return fail("--top must be at least 1");
  auto config = load_config(a.model, a.layers);
  if (!config.is_ok()) return fail(config.status().message());
  if (config->n_experts < 1) return fail("--model " + a.model + " has no routed experts");
  std::vector<HardwareProfile> profiles;
  for (const auto& path : a.profiles) {
    auto p = load_hardware_profile(path);
    if (!p.is_ok()) return fail(p.status().message());
    if (Status s = check_profile_model(*p, *config); !s.is_ok()) {
      return fail(s.with_context(path).message());
    }
    profiles.push_back(std::move(*p));
  }
  auto prices = parse_prices(a.prices);
  if (!prices.is_ok()) return fail(prices.status().message());
  auto attention = resolve_gpus(a.attention_gpu, *config, profiles, *prices);
  if (!attention.is_ok()) return fail("--attention-gpu: " + attention.status().message());
  auto expert = resolve_gpus(a.expert_gpu, *config, profiles, *prices);
  if (!expert.is_ok()) return fail("--expert-gpu: " + expert.status().message());

  const ModelShape model = model_shape(*config);
  if (!a.predict.empty()) {
    auto spec = parse_predict_spec(a.predict);
    if (!spec.is_ok()) return fail(spec.status().message());
    PredictArgs pa{*spec, a.batch_size, a.micro_batches, a.search.seq_len, a.search.slo_tbt_ms,
                   a.search.memory_fraction};
    auto predicted = predict_deployment(model, attention->front(), expert->front(), pa);
    if (!predicted.is_ok()) return fail(predicted.status().message());
    if (int rc = write_json_out(a.out, *predicted); rc != 0) return rc;
    std::cout << predicted->dump(2) << "\n" << std::flush;
    return std::cout ? 0 : fail("cannot write to stdout");
  }
  auto result = search_plans(model, *attention, *expert, a.search);
  if (!result.is_ok()) return fail(result.status().message());
  const DeploymentPlan chosen = to_deployment_plan(*result->best(), model, a.search);
  if (!a.out.empty()) {
    if (Status s = save_deployment_plan(chosen, a.out); !s.is_ok()) return fail(s.message());
  }
  json simulated;
  if (a.simulate && result->best()->kind == PlanKind::kDisaggregated) {
    const Candidate& c = *result->best();
    auto s = simulate_prediction(model, c.predicted, c.n_a, c.n_e, c.m, static_cast<double>(c.b_a));
    if (!s.is_ok()) return fail(s.status().message());
    simulated = *s;
  }
  if (a.json) {
    json j;
    j["chosen"] = deployment_plan_to_json(chosen);
    if (!simulated.is_null()) j["simulated"] = simulated;
    j["candidates"] = json::array();
    for (int i = 0; i < a.top && i < static_cast<int>(result->disaggregated.size()); ++i) {
      j["candidates"].push_back(
          candidate_json(result->disaggregated[static_cast<size_t>(i)], model, a.search));
    }
    j["colocated"] = json::array();
    for (const Candidate* c : best_colocated_per_gpu(*result)) {
      j["colocated"].push_back(candidate_json(*c, model, a.search));
    }
    j["gpus"] = json::array();
    for (const auto* list : {&*attention, &*expert}) {
      for (const GpuSide& g : *list) {
        j["gpus"].push_back({{"name", g.spec.name},
                             {"role", list == &*attention ? "attention" : "expert"},
                             {"source", g.profile.source},
                             {"price", g.price()},
                             {"price_is_estimate", g.spec.price_is_estimate}});
      }
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << table(*result, model, a.search, *attention, *expert, a.top);
    if (!simulated.is_null()) {
      std::cout << fmt::format("simulated chosen plan (±{:.0f}% stage jitter): TBT {:.1f} ms (closed form {:.1f} ms)\n",
                               100 * simulated["jitter"].get<double>(), simulated["step_ms"].get<double>(),
                               simulated["closed_form_ms"].get<double>());
    }
  }
  std::cout << std::flush;
  return std::cout ? 0 : fail("cannot write to stdout");
}

}  // namespace

void add_plan_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Choose a deployment (GPU types, parallelism, workers, micro-batches, batch) with "
      "the performance model and Algorithm 1 of MegaScale-Infer");
  cmd->add_option("--model", a->model, "config.json, or a Hugging Face model directory")
      ->required();
  cmd->add_option(
      "--attention-gpu", a->attention_gpu,
      "GPU type(s) for attention, comma-separated to compare (" + known_gpu_names() + ")");
  cmd->add_option("--expert-gpu", a->expert_gpu,
                  "GPU type(s) for experts, comma-separated to compare");
  cmd->add_option("--slo-tbt", a->slo_tbt, "Time-between-tokens SLO, e.g. 150ms or 0.2s")
      ->capture_default_str();
  cmd->add_option("--max-gpus", a->search.max_gpus, "Most GPUs in one deployment")
      ->capture_default_str();
  cmd->add_option("--seq-len", a->search.seq_len, "Average context length during decode (tokens)")
      ->capture_default_str();
  cmd->add_option("--max-micro-batches", a->search.max_micro_batches,
                  "N_m: the most micro-batches tried")
      ->capture_default_str();
  cmd->add_option("--memory-fraction", a->search.memory_fraction,
                  "Fraction of GPU memory usable for weights and KV cache")
      ->capture_default_str();
  cmd->add_option("--n-attention", a->n_attention,
                  "sweep: try every attention worker count; balance: only the paper's balance "
                  "condition n_a = k1·E/(k3·K)")
      ->capture_default_str();
  cmd->add_option("--profile", a->profiles,
                  "Hardware profile JSON from `msinfer profile` (repeatable); GPUs without one "
                  "use the catalog's roofline estimate");
  cmd->add_option("--price", a->prices,
                  "Override a normalized GPU price, NAME=VALUE (repeatable), e.g. H100=4.4");
  cmd->add_flag(
      "--no-colocated", [a](int64_t) { a->search.colocated = false; },
      "Do not score colocated deployments");
  cmd->add_option("--top", a->top, "Candidates to print")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the result as JSON");
  cmd->add_option("--out", a->out,
                  "Write the chosen plan to this file (for --plan); with --predict the prediction, with "
                  "--expert-load the placement report (for --expert-placement)");
  cmd->add_option("--predict", a->predict,
                  "Predict one deployment instead of searching: colocated:GPUS or "
                  "disaggregated:ATTENTION_GPUS:EXPERT_GPUS (with --batch-size, --micro-batches, --seq-len)");
  cmd->add_option("--layers", a->layers, "Plan for the model with this many layers (as `bench --hf-overrides`)");
  cmd->add_option("--batch-size", a->batch_size, "--predict: sequences decoding at once, whole deployment");
  cmd->add_option("--micro-batches", a->micro_batches, "--predict: m of a disaggregated deployment")
      ->capture_default_str();
  cmd->add_flag("--simulate", a->simulate,
                "Also run the discrete-event pipeline simulator on the chosen (or predicted) plan");
  cmd->add_option("--expert-load", a->expert_load,
                  "Propose an expert placement from this load file (bench --json result, or the server's "
                  "GET /expert_load); needs --expert-workers");
  cmd->add_option("--expert-workers", a->expert_workers, "--expert-load: the expert workers to place on");
  cmd->add_option("--slots-per-worker", a->slots_per_worker,
                  "--expert-load: experts one worker can hold (0: ceil(E/N) + 1)")
      ->capture_default_str();
  cmd->callback([&run, a] { run = [a] { return run_plan(*a); }; });
}

}  // namespace msi::cli

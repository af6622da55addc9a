#include "planner/expert_balance.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <queue>
#include <sstream>
#include <utility>

#include "core/check.h"

namespace msi {

std::vector<double> ExpertLoadStats::total_per_expert() const {
  std::vector<double> total(static_cast<size_t>(n_experts), 0.0);
  for (const auto& layer : tokens_per_expert) {
    for (size_t e = 0; e < layer.size() && e < total.size(); ++e) total[e] += layer[e];
  }
  return total;
}

Result<ExpertLoadStats> parse_expert_load(const nlohmann::json& root) {
  if (!root.is_object()) {
    return error(StatusCode::kInvalidArgument, "expert load: expected a JSON object");
  }
  const nlohmann::json& j = root.contains("expert_load") ? root["expert_load"] : root;
  if (!j.is_object() || !j.contains("tokens_per_expert")) {
    return error(StatusCode::kInvalidArgument,
                 "expert load: expected {{\"n_experts\", \"tokens_per_expert\"}} or a bench "
                 "result holding it under \"expert_load\"");
  }
  ExpertLoadStats s;
  if (!j.contains("n_experts") || !j["n_experts"].is_number_integer() ||
      j["n_experts"].get<int64_t>() < 1) {
    return error(StatusCode::kInvalidArgument,
                 "expert load: \"n_experts\" must be an integer >= 1");
  }
  s.n_experts = j["n_experts"].get<int64_t>();
  if (j.contains("window_steps")) {
    if (!j["window_steps"].is_number_integer() || j["window_steps"].get<int64_t>() < 0) {
      return error(StatusCode::kInvalidArgument,
                   "expert load: \"window_steps\" must be an integer >= 0");
    }
    s.window_steps = j["window_steps"].get<int64_t>();
  }
  const nlohmann::json& layers = j["tokens_per_expert"];
  if (!layers.is_array()) {
    return error(StatusCode::kInvalidArgument,
                 "expert load: \"tokens_per_expert\" must be an array of per-layer arrays");
  }
  int64_t n_moe_layers = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const nlohmann::json& row = layers[l];
    if (!row.is_array() || (!row.empty() && static_cast<int64_t>(row.size()) != s.n_experts)) {
      return error(StatusCode::kInvalidArgument,
                   "expert load: tokens_per_expert[{}] must be an array of {} counts (or empty "
                   "for a dense layer)",
                   l, s.n_experts);
    }
    std::vector<double> counts;
    counts.reserve(row.size());
    for (size_t e = 0; e < row.size(); ++e) {
      if (!row[e].is_number() || !std::isfinite(row[e].get<double>()) ||
          row[e].get<double>() < 0.0) {
        return error(StatusCode::kInvalidArgument,
                     "expert load: tokens_per_expert[{}][{}] is {}, must be a number >= 0", l, e,
                     row[e].dump());
      }
      counts.push_back(row[e].get<double>());
    }
    n_moe_layers += counts.empty() ? 0 : 1;
    s.tokens_per_expert.push_back(std::move(counts));
  }
  if (n_moe_layers == 0) {
    return error(StatusCode::kInvalidArgument, "expert load: no layer has per-expert counts");
  }
  return s;
}

Result<ExpertLoadStats> read_expert_load_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return error(StatusCode::kIoError, "cannot read the expert load file {}", path.string());
  std::stringstream text;
  text << f.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return error(StatusCode::kInvalidArgument, "{}: not valid JSON", path.string());
  }
  Result<ExpertLoadStats> s = parse_expert_load(j);
  if (!s.is_ok()) return s.status().with_context(path.string());
  return s;
}

namespace {

using WorkerLists = std::vector<std::vector<int32_t>>;  // [n_workers] → global expert ids

// Tokens per worker and per layer for explicit lists; a replicated expert's load splits evenly.
WorkerLoads loads_of(const WorkerLists& lists, const ExpertLoadStats& stats) {
  const size_t n_experts = static_cast<size_t>(stats.n_experts);
  std::vector<int32_t> n_replicas(n_experts, 0);
  for (const auto& list : lists) {
    for (int32_t e : list) ++n_replicas[static_cast<size_t>(e)];
  }
  WorkerLoads r;
  r.tokens.assign(lists.size(), 0.0);
  std::vector<double> layer_tokens(lists.size());
  for (const auto& layer : stats.tokens_per_expert) {
    if (layer.empty()) continue;
    std::fill(layer_tokens.begin(), layer_tokens.end(), 0.0);
    for (size_t w = 0; w < lists.size(); ++w) {
      for (int32_t e : lists[w]) {
        layer_tokens[w] += layer[static_cast<size_t>(e)] / n_replicas[static_cast<size_t>(e)];
      }
      r.tokens[w] += layer_tokens[w];
    }
    r.layer_max_sum += *std::max_element(layer_tokens.begin(), layer_tokens.end());
  }
  r.max = *std::max_element(r.tokens.begin(), r.tokens.end());
  r.mean =
      std::accumulate(r.tokens.begin(), r.tokens.end(), 0.0) / static_cast<double>(lists.size());
  r.imbalance = r.mean > 0.0 ? r.max / r.mean : 0.0;
  return r;
}

// LPT packing of `n_replicas[e]` replicas of each expert, each carrying load[e] / n_replicas[e],
// onto `n_workers` workers of `slots` slots, at most one replica of an expert per worker.
// NOTE: a later replica that finds no such worker with a free slot is dropped (the first always
// fits, since slots · workers ≥ experts), so the lists may hold fewer replicas than asked for.
WorkerLists pack_lpt(const std::vector<double>& load, const std::vector<int32_t>& n_replicas,
                     int64_t n_workers, int64_t slots) {
  struct Item {
    double load;
    int32_t expert;
  };
  std::vector<Item> items;
  for (size_t e = 0; e < load.size(); ++e) {
    for (int32_t k = 0; k < n_replicas[e]; ++k) {
      items.push_back({load[e] / n_replicas[e], static_cast<int32_t>(e)});
    }
  }
  // Largest first; ties by expert id, so an expert's replicas are adjacent.
  std::stable_sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
    return x.load != y.load ? x.load > y.load : x.expert < y.expert;
  });
  using Entry = std::pair<double, int32_t>;  // (load, worker): least loaded, then lowest id
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> open;
  for (int32_t w = 0; w < n_workers; ++w) open.push({0.0, w});
  WorkerLists lists(static_cast<size_t>(n_workers));
  std::vector<Entry> holders;  // popped workers that already hold the current expert
  for (const Item& item : items) {
    holders.clear();
    while (!open.empty()) {
      const Entry top = open.top();
      const auto& list = lists[static_cast<size_t>(top.second)];
      if (std::find(list.begin(), list.end(), item.expert) == list.end()) break;
      holders.push_back(top);
      open.pop();
    }
    if (!open.empty()) {
      const Entry top = open.top();
      open.pop();
      auto& list = lists[static_cast<size_t>(top.second)];
      list.push_back(item.expert);
      if (static_cast<int64_t>(list.size()) < slots) open.push({top.first + item.load, top.second});
    }
    for (const Entry& h : holders) open.push(h);
  }
  for (auto& list : lists) std::sort(list.begin(), list.end());
  return lists;
}

}  // namespace

WorkerLoads predict_worker_loads(const ExpertPlacement& placement, const ExpertLoadStats& stats) {
  MSI_CHECK(placement.n_experts() == stats.n_experts, "placement for {} experts, load for {}",
            placement.n_experts(), stats.n_experts);
  WorkerLists lists;
  for (int64_t w = 0; w < placement.n_workers(); ++w) lists.push_back(placement.experts_of(w));
  return loads_of(lists, stats);
}

Result<BalanceResult> balance_experts(const ExpertLoadStats& stats, const BalanceOptions& options) {
  const int64_t n_experts = stats.n_experts;
  const int64_t n_workers = options.n_expert_workers;
  MSI_ASSIGN_OR_RETURN(ExpertPlacement contiguous,
                       ExpertPlacement::contiguous(n_experts, n_workers));
  const int64_t min_slots = (n_experts + n_workers - 1) / n_workers;
  int64_t slots = options.slots_per_worker == 0 ? min_slots + 1 : options.slots_per_worker;
  if (slots < min_slots) {
    return error(StatusCode::kInvalidArgument,
                 "{} expert slots per worker cannot hold {} experts on {} workers (need >= {})",
                 options.slots_per_worker, n_experts, n_workers, min_slots);
  }
  slots = std::min(slots, n_experts);
  for (size_t l = 0; l < stats.tokens_per_expert.size(); ++l) {
    const size_t n = stats.tokens_per_expert[l].size();
    if (n != 0 && static_cast<int64_t>(n) != n_experts) {
      return error(StatusCode::kInvalidArgument,
                   "expert load: layer {} has {} counts for {} experts", l, n, n_experts);
    }
  }

  const std::vector<double> load = stats.total_per_expert();  // [n_experts]
  const double mean_expert =
      std::accumulate(load.begin(), load.end(), 0.0) / static_cast<double>(n_experts);
  std::vector<int32_t> n_replicas(static_cast<size_t>(n_experts), 1);
  WorkerLists best = pack_lpt(load, n_replicas, n_workers, slots);
  WorkerLoads best_loads = loads_of(best, stats);
  int64_t spare = slots * n_workers - n_experts;
  for (; spare > 0; --spare) {
    // The hottest expert per replica that is not yet on every worker.
    int64_t hot = -1;
    double hot_load = 0.0;
    for (int64_t e = 0; e < n_experts; ++e) {
      const size_t i = static_cast<size_t>(e);
      const double per_replica = load[i] / n_replicas[i];
      if (n_replicas[i] < n_workers && per_replica > hot_load) {
        hot = e;
        hot_load = per_replica;
      }
    }
    // Replicating an expert no hotter than the mean adds weight reads and lowers nothing much.
    if (hot < 0 || hot_load <= mean_expert) break;
    ++n_replicas[static_cast<size_t>(hot)];
    WorkerLists lists = pack_lpt(load, n_replicas, n_workers, slots);
    WorkerLoads loads = loads_of(lists, stats);
    if (loads.max < best_loads.max) {
      best = std::move(lists);
      best_loads = std::move(loads);
    }
  }

  BalanceResult r;
  r.slots_per_worker = slots;
  r.before = predict_worker_loads(contiguous, stats);
  if (best_loads.max < r.before.max) {
    MSI_ASSIGN_OR_RETURN(r.placement,
                         ExpertPlacement::from_worker_lists(n_experts, std::move(best)));
    r.after = std::move(best_loads);
  } else {
    r.placement = contiguous;
    r.after = r.before;
    r.kept_contiguous = true;
  }
  for (int64_t w = 0; w < r.placement.n_workers(); ++w) {
    r.n_replicas += static_cast<int64_t>(r.placement.experts_of(w).size());
  }
  r.n_replicas -= n_experts;
  return r;
}

namespace {
nlohmann::json loads_json(const WorkerLoads& l) {
  return {{"worker_tokens", l.tokens},
          {"max", l.max},
          {"mean", l.mean},
          {"imbalance", l.imbalance},
          {"layer_max_sum", l.layer_max_sum}};
}
}  // namespace

nlohmann::json balance_report_json(const BalanceResult& r) {
  return {{"n_experts", r.placement.n_experts()},
          {"n_expert_workers", r.placement.n_workers()},
          {"slots_per_worker", r.slots_per_worker},
          {"n_replicas", r.n_replicas},
          {"kept_contiguous", r.kept_contiguous},
          {"placement", r.placement.to_json()},
          {"before", loads_json(r.before)},
          {"after", loads_json(r.after)},
          {"max_reduction", r.before.max > 0.0 ? 1.0 - r.after.max / r.before.max : 0.0}};
}

std::vector<double> load_shares(const WorkerLoads& loads) {
  const double total = std::accumulate(loads.tokens.begin(), loads.tokens.end(), 0.0);
  std::vector<double> shares(loads.tokens.size(), 1.0 / static_cast<double>(loads.tokens.size()));
  if (total <= 0.0) return shares;
  for (size_t w = 0; w < shares.size(); ++w) shares[w] = loads.tokens[w] / total;
  return shares;
}

}  // namespace msi

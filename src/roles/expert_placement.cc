#include "roles/expert_placement.h"

namespace msi {

Result<ExpertPlacement> ExpertPlacement::contiguous(int64_t n_experts, int64_t n_workers) {
  if (n_workers < 1 || n_workers > n_experts) {
    return error(StatusCode::kInvalidArgument,
                 "cannot place {} experts on {} expert workers (need 1 to {} workers)", n_experts,
                 n_workers, n_experts);
  }
  std::vector<std::vector<int32_t>> lists(static_cast<size_t>(n_workers));
  for (int64_t w = 0; w < n_workers; ++w) {
    // Worker w holds [ceil(w*E/N), ceil((w+1)*E/N)): earlier workers get the extra experts.
    const int64_t begin = (w * n_experts + n_workers - 1) / n_workers;
    const int64_t end = ((w + 1) * n_experts + n_workers - 1) / n_workers;
    for (int64_t e = begin; e < end; ++e) lists[static_cast<size_t>(w)].push_back(static_cast<int32_t>(e));
  }
  return from_worker_lists(n_experts, std::move(lists));
}

Result<ExpertPlacement> ExpertPlacement::from_worker_lists(
    int64_t n_experts, std::vector<std::vector<int32_t>> worker_experts) {
  if (worker_experts.empty()) return error(StatusCode::kInvalidArgument, "placement has no expert workers");
  if (n_experts < 1) return error(StatusCode::kInvalidArgument, "placement needs at least one expert");
  ExpertPlacement p;
  p.n_experts_ = n_experts;
  p.replicas_.resize(static_cast<size_t>(n_experts));
  for (size_t w = 0; w < worker_experts.size(); ++w) {
    const auto& list = worker_experts[w];
    for (size_t j = 0; j < list.size(); ++j) {
      const int32_t e = list[j];
      if (e < 0 || e >= n_experts) {
        return error(StatusCode::kInvalidArgument, "placement: worker {} lists expert {}, model has {}", w, e,
                     n_experts);
      }
      for (const Replica& r : p.replicas_[static_cast<size_t>(e)]) {
        if (r.worker == static_cast<int32_t>(w)) {
          return error(StatusCode::kInvalidArgument, "placement: worker {} lists expert {} twice", w, e);
        }
      }
      p.replicas_[static_cast<size_t>(e)].push_back({static_cast<int32_t>(w), static_cast<int32_t>(j)});
    }
  }
  for (int64_t e = 0; e < n_experts; ++e) {
    if (p.replicas_[static_cast<size_t>(e)].empty()) {
      return error(StatusCode::kInvalidArgument, "placement: expert {} is on no worker", e);
    }
  }
  p.worker_experts_ = std::move(worker_experts);
  return p;
}

int32_t ExpertPlacement::local_index(int64_t worker, int32_t expert) const {
  for (const Replica& r : replicas_[static_cast<size_t>(expert)]) {
    if (r.worker == worker) return r.local;
  }
  return -1;
}

bool ExpertPlacement::has_replicas() const {
  for (const auto& r : replicas_) {
    if (r.size() > 1) return true;
  }
  return false;
}

std::vector<int32_t> ExpertPlacement::replica_table(int64_t worker) const {
  std::vector<int32_t> table(static_cast<size_t>(2 * n_experts_), 0);
  for (size_t e = 0; e < replicas_.size(); ++e) {
    table[2 * e] = static_cast<int32_t>(replicas_[e].size());
    for (size_t i = 0; i < replicas_[e].size(); ++i) {
      if (replicas_[e][i].worker == worker) table[2 * e + 1] = static_cast<int32_t>(i);
    }
  }
  return table;
}

nlohmann::json ExpertPlacement::to_json() const {
  return nlohmann::json{{"n_experts", n_experts_}, {"workers", worker_experts_}};
}

Result<ExpertPlacement> ExpertPlacement::from_json(const nlohmann::json& j, int64_t n_experts) {
  if (!j.is_object() || !j.contains("workers") || !j["workers"].is_array()) {
    return error(StatusCode::kInvalidArgument, "placement JSON needs a \"workers\" array of expert id lists");
  }
  if (j.contains("n_experts") && j["n_experts"] != n_experts) {
    return error(StatusCode::kInvalidArgument, "placement is for {} experts, model has {}",
                 j["n_experts"].dump(), n_experts);
  }
  std::vector<std::vector<int32_t>> lists;
  for (const auto& w : j["workers"]) {
    if (!w.is_array()) return error(StatusCode::kInvalidArgument, "placement: each worker is a list of expert ids");
    std::vector<int32_t> list;
    for (const auto& e : w) {
      if (!e.is_number_integer()) return error(StatusCode::kInvalidArgument, "placement: expert ids are integers");
      // NOTE: checked before get<int32_t>(), which would wrap 2^32 + k to k.
      if (e.is_number_unsigned() ? e.get<uint64_t>() >= static_cast<uint64_t>(n_experts)
                                 : (e.get<int64_t>() < 0 || e.get<int64_t>() >= n_experts)) {
        return error(StatusCode::kInvalidArgument, "placement: expert {} out of range, model has {}",
                     e.dump(), n_experts);
      }
      list.push_back(e.get<int32_t>());
    }
    lists.push_back(std::move(list));
  }
  return from_worker_lists(n_experts, std::move(lists));
}

}  // namespace msi

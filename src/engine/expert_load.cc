#include "engine/expert_load.h"

#include <algorithm>

#include "core/check.h"

namespace msi {

ExpertLoadWindow::ExpertLoadWindow(const ModelConfig& config, int n_attention_workers)
    : n_experts_(config.n_experts), window_steps_(static_cast<size_t>(n_attention_workers), 0) {
  for (int64_t l = 0; l < config.n_layers; ++l) moe_layer_.push_back(config.is_moe_layer(l));
  totals_.assign(static_cast<size_t>(config.n_layers * config.n_experts), 0);
  window_ = totals_;
}

void ExpertLoadWindow::add(int worker, const WorkerReport& report) {
  if (report.expert_tokens.empty()) return;
  MSI_CHECK(report.expert_tokens.size() == totals_.size(),
            "expert load: a report of {} counts for {} layers x {} experts",
            report.expert_tokens.size(), n_layers(), n_experts_);
  MSI_CHECK(worker >= 0 && static_cast<size_t>(worker) < window_steps_.size(),
            "expert load: worker {}", worker);
  for (size_t i = 0; i < totals_.size(); ++i) {
    totals_[i] += report.expert_tokens[i];
    window_[i] += report.expert_tokens[i];
  }
  window_steps_[static_cast<size_t>(worker)] += report.expert_steps;
}

nlohmann::json ExpertLoadWindow::window_json() const {
  nlohmann::json layers = nlohmann::json::array();
  for (int64_t l = 0; l < n_layers(); ++l) {
    const auto begin = window_.begin() + l * n_experts_;
    layers.push_back(is_moe_layer(l) ? std::vector<int64_t>(begin, begin + n_experts_)
                                     : std::vector<int64_t>{});
  }
  const int64_t steps =
      window_steps_.empty() ? 0 : *std::max_element(window_steps_.begin(), window_steps_.end());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start_).count();
  return {{"window_steps", steps},
          {"window_seconds", seconds},
          {"n_experts", n_experts_},
          {"tokens_per_expert", layers}};
}

nlohmann::json ExpertLoadWindow::reset() {
  nlohmann::json closed = window_json();
  std::fill(window_.begin(), window_.end(), 0);
  std::fill(window_steps_.begin(), window_steps_.end(), 0);
  window_start_ = std::chrono::steady_clock::now();
  return closed;
}

}  // namespace msi

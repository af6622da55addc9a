#include "engine/engine.h"

#include <algorithm>
#include <thread>

#include "backend/registry.h"
#include "comm/m2n.h"
#include "engine/attention_runner.h"
#include "engine/worker_setup.h"
#include "pipeline/chrome_trace.h"
#include "roles/expert_server.h"
#include "roles/m2n_expert_link.h"

namespace msi {

Engine::~Engine() = default;

Status validate_engine_options(const EngineOptions& o) {
  if (o.n_attention_workers < 1) return error(StatusCode::kInvalidArgument, "--attention-workers must be at least 1");
  if (o.n_expert_workers < 1) return error(StatusCode::kInvalidArgument, "--expert-workers must be at least 1");
  if (o.n_micro_batches < 1 || o.n_micro_batches > kMaxMicroBatches) {
    return error(StatusCode::kInvalidArgument, "--micro-batches must be in [1, {}]", kMaxMicroBatches);
  }
  if (o.kv_block_size < 1) return error(StatusCode::kInvalidArgument, "--kv-block-size must be at least 1");
  if (o.max_batched_tokens < 1 || o.max_seqs < 1) {
    return error(StatusCode::kInvalidArgument, "--max-num-batched-tokens and --max-num-seqs must be positive");
  }
  if (o.peer_timeout.count() <= 0) return error(StatusCode::kInvalidArgument, "the peer timeout must be positive");
  return Status::ok();
}

Result<int64_t> resolve_max_model_len(const ModelConfig& config, const EngineOptions& options) {
  const int64_t len = options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  if (len > config.max_position_embeddings) {
    return error(StatusCode::kInvalidArgument, "--max-model-len {} exceeds the model's max_position_embeddings {}",
                 len, config.max_position_embeddings);
  }
  return len;
}

std::vector<int> assign_requests(const std::vector<GenerateRequest>& requests, int n_workers) {
  std::vector<int64_t> load(static_cast<size_t>(n_workers), 0);
  std::vector<int> worker(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto it = std::min_element(load.begin(), load.end());
    worker[i] = static_cast<int>(it - load.begin());
    *it += static_cast<int64_t>(requests[i].prompt.size());
  }
  return worker;
}

Result<std::unique_ptr<Engine>> Engine::create(const std::filesystem::path& model_dir,
                                               const EngineOptions& options) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  MSI_ASSIGN_OR_RETURN(WorkerSetup setup, open_worker_setup(model_dir, options));
  e->config_ = setup.config;
  e->max_model_len_ = setup.max_model_len;
  e->placement_ = setup.placement;
  for (int a = 0; a < options.n_attention_workers; ++a) {
    MSI_ASSIGN_OR_RETURN(auto backend, make_backend(options.device));
    MSI_ASSIGN_OR_RETURN(auto worker, make_attention_worker(e->config_, setup, *backend, options));
    e->attention_backends_.push_back(std::move(backend));
    e->attention_.push_back(std::move(worker));
  }
  for (int x = 0; x < options.n_expert_workers; ++x) {
    MSI_ASSIGN_OR_RETURN(auto backend, make_backend(options.device));
    MSI_ASSIGN_OR_RETURN(auto worker, make_expert_worker(e->config_, setup, *backend, options, x));
    e->expert_backends_.push_back(std::move(backend));
    e->experts_.push_back(std::move(worker));
  }
  return e;
}

int64_t Engine::kv_blocks_in_use() const {
  int64_t n = 0;
  for (const auto& a : attention_) n += a->block_pool().n_used();
  return n;
}

Result<std::vector<GenerateResult>> Engine::generate(const std::vector<GenerateRequest>& requests) {
  MSI_RETURN_IF_ERROR(validate_requests(config_, max_model_len_, requests));
  const int m_workers = options_.n_attention_workers, n_workers = options_.n_expert_workers;
  const std::vector<int> owner = assign_requests(requests, m_workers);
  std::vector<std::vector<GenerateRequest>> per_worker(static_cast<size_t>(m_workers));
  for (size_t i = 0; i < requests.size(); ++i) per_worker[static_cast<size_t>(owner[i])].push_back(requests[i]);

  // Fresh M2N groups per call: steps count from 0 again.
  MSI_ASSIGN_OR_RETURN(auto dispatch, comm::make_inproc_transport(dispatch_options(config_, options_)));
  MSI_ASSIGN_OR_RETURN(auto combine, comm::make_inproc_transport(combine_options(config_, options_)));
  timelines_.clear();
  if (options_.record_timeline) {
    for (int a = 0; a < m_workers; ++a) timelines_.push_back(std::make_unique<Timeline>(attention_label(a)));
    for (int x = 0; x < n_workers; ++x) timelines_.push_back(std::make_unique<Timeline>(expert_label(x)));
  }
  auto timeline = [&](size_t i) { return options_.record_timeline ? timelines_[i].get() : nullptr; };

  std::vector<Status> attention_status(static_cast<size_t>(m_workers)), expert_status(static_cast<size_t>(n_workers));
  std::vector<std::vector<GenerateResult>> per_worker_results(static_cast<size_t>(m_workers));
  std::vector<std::thread> threads;
  const uint64_t seed_base = (generation_++) << 32;
  for (int a = 0; a < m_workers; ++a) {
    threads.emplace_back([&, a] {
      auto sender = dispatch->open_sender(a);
      auto receiver = combine->open_receiver(a);
      if (!sender.is_ok() || !receiver.is_ok()) {
        attention_status[static_cast<size_t>(a)] = sender.is_ok() ? receiver.status() : sender.status();
        return;
      }
      M2NExpertLink link(*attention_backends_[static_cast<size_t>(a)], placement_, std::move(sender).value(),
                         std::move(receiver).value(), options_.max_batched_tokens, config_.hidden_size,
                         config_.n_experts_per_tok, options_.n_micro_batches);
      AttentionRunner runner(config_, *attention_[static_cast<size_t>(a)], link,
                             runner_options(options_, max_model_len_, seed_base + static_cast<uint64_t>(a) * 1000003u),
                             timeline(static_cast<size_t>(a)));
      auto r = runner.run(per_worker[static_cast<size_t>(a)]);
      if (r.is_ok()) per_worker_results[static_cast<size_t>(a)] = std::move(r).value();
      else attention_status[static_cast<size_t>(a)] = r.status().with_context(attention_label(a));
    });
  }
  for (int x = 0; x < n_workers; ++x) {
    threads.emplace_back([&, x] {
      auto receiver = dispatch->open_receiver(x);
      auto sender = combine->open_sender(x);
      if (!sender.is_ok() || !receiver.is_ok()) {
        expert_status[static_cast<size_t>(x)] = sender.is_ok() ? receiver.status() : sender.status();
        return;
      }
      ExpertServer server(config_, *experts_[static_cast<size_t>(x)], std::move(receiver).value(),
                          std::move(sender).value(), m_workers, options_.n_micro_batches,
                          timeline(static_cast<size_t>(m_workers + x)));
      expert_status[static_cast<size_t>(x)] = server.run().with_context(expert_label(x));
    });
  }
  for (auto& t : threads) t.join();

  // The root cause first: a worker's own failure over the peers that failed because of it.
  MSI_RETURN_IF_ERROR(first_root_error(attention_status, expert_status));
  std::vector<GenerateResult> results(requests.size());
  std::vector<size_t> next(static_cast<size_t>(m_workers), 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto w = static_cast<size_t>(owner[i]);
    results[i] = std::move(per_worker_results[w][next[w]++]);
  }
  return results;
}

Status Engine::write_trace(const std::filesystem::path& path) const {
  if (timelines_.empty()) return error(StatusCode::kInvalidArgument, "no timeline was recorded");
  std::vector<const Timeline*> all;
  for (const auto& t : timelines_) all.push_back(t.get());
  const int64_t origin = earliest_span_ns(all);
  nlohmann::json events = nlohmann::json::array();
  for (size_t i = 0; i < all.size(); ++i) {
    for (auto& ev : timeline_trace_events(*all[i], 0, static_cast<int>(i), origin)) events.push_back(std::move(ev));
  }
  return write_chrome_trace(path, events);
}

}  // namespace msi

#include "engine/engine.h"

#include <algorithm>

#include "engine/worker_setup.h"

namespace msi {

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

Result<std::unique_ptr<Engine>> Engine::create(const std::filesystem::path& model_dir, const EngineOptions& options,
                                               const EngineRunOptions& run_options) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  const nlohmann::json* overrides = options.hf_overrides.is_null() ? nullptr : &options.hf_overrides;
  MSI_ASSIGN_OR_RETURN(e->config_, load_model_config(model_dir, overrides));
  MSI_ASSIGN_OR_RETURN(e->max_model_len_, resolve_max_model_len(e->config_, options));
  e->kv_used_.assign(static_cast<size_t>(options.n_attention_workers), 0);
  e->expert_load_ = ExpertLoadWindow(e->config_, options.n_attention_workers);
  Engine* self = e.get();
  DeploymentCallbacks callbacks;
  callbacks.on_report = [self](int worker, const WorkerReport& report) { self->on_report(worker, report); };
  callbacks.on_failure = [self](const Status& status) {
    std::lock_guard<std::mutex> lock(self->mu_);
    if (self->failure_.is_ok()) self->failure_ = status;
    self->cv_.notify_all();
  };
  if (options.transport == "shm") {
    MSI_ASSIGN_OR_RETURN(e->deployment_, start_process_deployment(model_dir, options, std::move(callbacks),
                                                                  run_options.trace_path, run_options.self_exe));
  } else {
    MSI_ASSIGN_OR_RETURN(e->deployment_,
                         start_thread_deployment(model_dir, options, std::move(callbacks), run_options.trace_path));
  }
  return e;
}

Engine::~Engine() {
  if (!shut_down_ && deployment_) (void)shutdown();
}

void Engine::on_report(int worker, const WorkerReport& report) {
  std::lock_guard<std::mutex> lock(mu_);
  kv_used_[static_cast<size_t>(worker)] = report.stats.kv_blocks_used;
  expert_load_.add(worker, report);
  for (const SeqOutput& o : report.outputs) {
    auto it = pending_.find(o.id);
    if (it == pending_.end()) continue;
    GenerateResult& r = *it->second.result;
    if (o.token >= 0) r.output_ids.push_back(o.token);
    if (!o.logits.empty()) r.logits.push_back(o.logits);
    if (o.finished) {
      r.finish_reason = o.finish_reason;
      it->second.done = true;
    }
  }
  cv_.notify_all();
}

int64_t Engine::kv_blocks_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (int64_t u : kv_used_) n += u;
  return n;
}

nlohmann::json Engine::expert_load_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expert_load_.window_json();
}

Result<std::vector<GenerateResult>> Engine::generate(const std::vector<GenerateRequest>& requests) {
  MSI_RETURN_IF_ERROR(validate_requests(config_, max_model_len_, requests));
  std::vector<GenerateResult> results(requests.size());
  const std::vector<int> owner = assign_requests(requests, options_.n_attention_workers);
  std::vector<int64_t> ids(requests.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return error(StatusCode::kUnavailable, "the engine was shut down");
    MSI_RETURN_IF_ERROR(failure_);
    for (size_t i = 0; i < requests.size(); ++i) {
      ids[i] = next_id_++;
      pending_[ids[i]] = Pending{&results[i], false};
    }
  }
  Status status = Status::ok();
  for (size_t i = 0; i < requests.size() && status.is_ok(); ++i) {
    SchedRequest r;
    r.id = ids[i];
    r.prompt = requests[i].prompt;
    r.sampling = requests[i].sampling;
    r.return_logits = requests[i].return_logits;
    r.fallback_seed = 0x51ed270b27a1f7ull ^ static_cast<uint64_t>(ids[i]);
    status = deployment_->submit(owner[i], std::move(r));
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (status.is_ok()) {
    cv_.wait(lock, [&] {
      if (!failure_.is_ok()) return true;
      return std::all_of(ids.begin(), ids.end(), [&](int64_t id) { return pending_[id].done; });
    });
    status = failure_;
  }
  for (int64_t id : ids) pending_.erase(id);
  if (!status.is_ok()) return status;
  return results;
}

Status Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return failure_;
    shut_down_ = true;
  }
  // Generous: workers finish what they have (nothing, after generate() returned) and stop.
  Status st = deployment_->shutdown(options_.peer_timeout + std::chrono::seconds(5));
  std::lock_guard<std::mutex> lock(mu_);
  return failure_.is_ok() ? st : failure_;
}

}  // namespace msi

#include "serving/async_engine.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace msi {

using Clock = std::chrono::steady_clock;

struct AsyncEngine::Live {
  std::shared_ptr<RequestHandle> handle;
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::vector<std::string> stop;
  size_t max_stop_len = 0;
  int64_t n_logprobs = -1;
  int64_t n_prompt = 0;
  int64_t n_out = 0;
  std::string held;  // detokenized text not yet released: it may begin a stop string
  Clock::time_point arrival, last_token;
  bool aborting = false;
};

namespace {

// The longest prefix of `s` that ends on a UTF-8 character boundary and is at most `n` bytes.
size_t utf8_floor(const std::string& s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

Result<std::unique_ptr<AsyncEngine>> AsyncEngine::create(const std::filesystem::path& model_dir,
                                                         const EngineOptions& options, const EngineRunOptions& run,
                                                         const TextFrontend& frontend, metrics::ServingMetrics* metrics,
                                                         const AsyncEngineLimits& limits) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  std::unique_ptr<AsyncEngine> e(new AsyncEngine());
  const nlohmann::json* overrides = options.hf_overrides.is_null() ? nullptr : &options.hf_overrides;
  MSI_ASSIGN_OR_RETURN(e->config_, load_model_config(model_dir, overrides));
  MSI_ASSIGN_OR_RETURN(e->max_model_len_, resolve_max_model_len(e->config_, options));
  if (options.kv_n_blocks * options.kv_block_size < e->max_model_len_) {
    return error(StatusCode::kInvalidArgument,
                 "the KV cache ({} blocks of {} tokens per attention worker) cannot hold one sequence of "
                 "--max-model-len {} tokens",
                 options.kv_n_blocks, options.kv_block_size, e->max_model_len_);
  }
  e->frontend_ = &frontend;
  e->metrics_ = metrics;
  e->limits_ = limits;
  e->in_flight_per_worker_.assign(static_cast<size_t>(options.n_attention_workers), 0);
  e->worker_stats_.assign(static_cast<size_t>(options.n_attention_workers), WorkerStats{});
  e->expert_load_ = ExpertLoadWindow(e->config_, options.n_attention_workers);
  AsyncEngine* self = e.get();
  DeploymentCallbacks callbacks;
  callbacks.on_report = [self](int worker, const WorkerReport& r) { self->on_report(worker, r); };
  callbacks.on_failure = [self](const Status& s) { self->on_failure(s); };
  if (options.transport == "shm") {
    MSI_ASSIGN_OR_RETURN(e->deployment_, start_process_deployment(model_dir, options, std::move(callbacks),
                                                                  run.trace_path, run.self_exe));
  } else {
    MSI_ASSIGN_OR_RETURN(e->deployment_, start_thread_deployment(model_dir, options, std::move(callbacks), run.trace_path));
  }
  return e;
}

AsyncEngine::~AsyncEngine() { (void)shutdown(); }

Status AsyncEngine::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.is_ok()) return failure_;
  if (shut_down_) return error(StatusCode::kUnavailable, "the engine is shutting down");
  return Status::ok();
}

int64_t AsyncEngine::n_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(live_.size());
}

nlohmann::json AsyncEngine::expert_load_window(bool reset) {
  std::lock_guard<std::mutex> lock(mu_);
  return reset ? expert_load_.reset() : expert_load_.window_json();
}

ExpertLoadWindow AsyncEngine::expert_load() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expert_load_;
}

Result<std::shared_ptr<RequestHandle>> AsyncEngine::submit(ServeRequest request) {
  std::unique_lock<std::mutex> lock(mu_);
  auto full = [&] {
    return limits_.max_num_requests > 0 && static_cast<int64_t>(live_.size()) >= limits_.max_num_requests;
  };
  if (full()) {
    if (limits_.reject_when_full) {
      return error(StatusCode::kResourceExhausted, "the server is at its limit of {} concurrent requests",
                   limits_.max_num_requests);
    }
    if (!slot_cv_.wait_for(lock, limits_.queue_timeout, [&] { return !full() || !failure_.is_ok() || shut_down_; })) {
      return error(StatusCode::kResourceExhausted, "no request slot became free within {} ms",
                   limits_.queue_timeout.count());
    }
  }
  if (!failure_.is_ok()) return error(StatusCode::kUnavailable, "the engine failed: {}", failure_.message());
  if (shut_down_) return error(StatusCode::kUnavailable, "the engine is shutting down");

  const auto least = std::min_element(in_flight_per_worker_.begin(), in_flight_per_worker_.end());
  const int worker = static_cast<int>(least - in_flight_per_worker_.begin());
  const int64_t id = next_id_++;
  auto live = std::make_unique<Live>();
  live->handle = std::shared_ptr<RequestHandle>(new RequestHandle(this, id, worker));
  live->detok = std::make_unique<IncrementalDetokenizer>(frontend_->tokenizer(), true, request.prompt);
  live->stop = request.stop;
  for (const auto& s : live->stop) live->max_stop_len = std::max(live->max_stop_len, s.size());
  live->n_logprobs = request.n_logprobs;
  live->n_prompt = static_cast<int64_t>(request.prompt.size());
  live->arrival = live->last_token = Clock::now();
  std::shared_ptr<RequestHandle> handle = live->handle;
  live_.emplace(id, std::move(live));
  ++*least;
  if (metrics_) metrics_->prompt_tokens.inc(static_cast<double>(request.prompt.size()));

  SchedRequest r;
  r.id = id;
  r.prompt = std::move(request.prompt);
  r.sampling = request.sampling;
  r.stop_token_ids = std::move(request.stop_token_ids);
  r.min_tokens = request.min_tokens;
  r.n_logprobs = request.n_logprobs;
  r.fallback_seed = 0x2545f4914f6cdd1dull * static_cast<uint64_t>(id + 1);
  Status st = deployment_->submit(worker, std::move(r));
  if (!st.is_ok()) {
    finish_locked(id);
    return st;
  }
  return handle;
}

void AsyncEngine::finish_locked(int64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  --in_flight_per_worker_[static_cast<size_t>(it->second->handle->worker_)];
  live_.erase(it);
  slot_cv_.notify_all();
}

void AsyncEngine::on_report(int worker, const WorkerReport& report) {
  std::lock_guard<std::mutex> lock(mu_);
  // Load gauges: the sum over attention workers.
  const int64_t prev_preemptions = worker_stats_[static_cast<size_t>(worker)].n_preemptions;
  worker_stats_[static_cast<size_t>(worker)] = report.stats;
  expert_load_.add(worker, report);
  if (metrics_) {
    int64_t running = 0, waiting = 0, used = 0, total = 0;
    for (const WorkerStats& s : worker_stats_) {
      running += s.n_running;
      waiting += s.n_waiting;
      used += s.kv_blocks_used;
      total += s.kv_blocks_total;
    }
    metrics_->requests_running.set(static_cast<double>(running));
    metrics_->requests_waiting.set(static_cast<double>(waiting));
    metrics_->kv_cache_usage.set(total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0);
    if (report.stats.n_preemptions > prev_preemptions) {
      metrics_->preemptions.inc(static_cast<double>(report.stats.n_preemptions - prev_preemptions));
    }
  }
  const Clock::time_point now = Clock::now();
  for (const SeqOutput& o : report.outputs) {
    auto it = live_.find(o.id);
    if (it == live_.end()) continue;  // already ended (a stop string)
    Live& live = *it->second;
    StreamDelta d;
    bool stopped_by_string = false;
    if (o.token >= 0) {
      ++live.n_out;
      d.token_ids.push_back(o.token);
      if (live.n_logprobs >= 0) d.logprobs.push_back(TokenLogprob{o.token, o.logprob, o.top_logprobs});
      if (metrics_) {
        metrics_->generation_tokens.inc();
        const double gap = std::chrono::duration<double>(now - live.last_token).count();
        if (live.n_out == 1) metrics_->observe_ttft(gap);
        else metrics_->observe_inter_token_latency(gap);
      }
      live.last_token = now;
      // A stop token's text is not part of the output (like vLLM); EOS is special anyway.
      const bool stop_token = o.finished && o.finish_reason == "stop";
      if (stop_token) {
        d.stop_token = o.token;
      } else if (!live.aborting) {
        auto piece = live.detok->push(o.token);
        if (piece.is_ok()) live.held += *piece;
      }
      // Stop strings: the earliest match ends the request; the text stops right before it.
      size_t cut = std::string::npos;
      for (const std::string& s : live.stop) {
        const size_t at = live.held.find(s);
        if (at != std::string::npos && at < cut) {
          cut = at;
          d.stop_string = s;
        }
      }
      if (cut != std::string::npos && !live.aborting) {
        d.text = live.held.substr(0, cut);
        live.held.clear();
        stopped_by_string = true;
      } else if (!o.finished) {
        // Hold back what could still become a stop string.
        const size_t keep = live.max_stop_len > 0 ? live.max_stop_len - 1 : 0;
        const size_t release = live.held.size() > keep ? utf8_floor(live.held, live.held.size() - keep) : 0;
        d.text = live.held.substr(0, release);
        live.held.erase(0, release);
      }
    }
    if (o.finished && !stopped_by_string) {
      if (!live.aborting) {
        auto rest = live.detok->flush();
        if (rest.is_ok()) live.held += *rest;
      }
      d.text += live.held;
      live.held.clear();
    }
    d.n_prompt_tokens = live.n_prompt;
    d.n_output_tokens = live.n_out;
    if (stopped_by_string) {
      // The worker does not know about stop strings: abort it there; report "stop" here.
      (void)deployment_->abort(live.handle->worker_, o.id);
      d.finished = true;
      d.finish_reason = "stop";
    } else if (o.finished) {
      d.finished = true;
      d.finish_reason = o.finish_reason;
    }
    if (d.finished && metrics_) {
      const auto reason = d.finish_reason == "stop"     ? metrics::FinishedReason::kStop
                          : d.finish_reason == "length" ? metrics::FinishedReason::kLength
                                                        : metrics::FinishedReason::kAbort;
      metrics_->on_request_finished(reason, std::chrono::duration<double>(now - live.arrival).count());
    }
    {
      RequestHandle& h = *live.handle;
      std::lock_guard<std::mutex> hl(h.mu_);
      StreamDelta& p = h.pending_;
      p.token_ids.insert(p.token_ids.end(), d.token_ids.begin(), d.token_ids.end());
      p.text += d.text;
      for (auto& lp : d.logprobs) p.logprobs.push_back(std::move(lp));
      p.n_prompt_tokens = d.n_prompt_tokens;
      p.n_output_tokens = d.n_output_tokens;
      if (d.finished) {
        p.finished = true;
        p.finish_reason = d.finish_reason;
        p.stop_string = d.stop_string;
        p.stop_token = d.stop_token;
        h.done_ = true;
      }
      h.has_pending_ = true;
      h.cv_.notify_all();
    }
    if (d.finished) finish_locked(o.id);
  }
}

void AsyncEngine::on_failure(const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failure_.is_ok()) failure_ = status;
  for (auto& [id, live] : live_) {
    RequestHandle& h = *live->handle;
    std::lock_guard<std::mutex> hl(h.mu_);
    h.failure_ = status;
    h.cv_.notify_all();
  }
  slot_cv_.notify_all();
}

void AsyncEngine::cancel(RequestHandle& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(handle.id_);
  if (it == live_.end() || it->second->aborting) return;
  it->second->aborting = true;
  // The worker frees the KV blocks at its next step and reports the request finished ("abort").
  (void)deployment_->abort(handle.worker_, handle.id_);
}

Status AsyncEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || !deployment_) return failure_;
    shut_down_ = true;
    for (auto& [id, live] : live_) {
      live->aborting = true;
      (void)deployment_->abort(live->handle->worker_, id);
    }
    slot_cv_.notify_all();
  }
  Status st = deployment_->shutdown(std::chrono::seconds(30));
  std::lock_guard<std::mutex> lock(mu_);
  return failure_.is_ok() ? st : failure_;
}

Result<StreamDelta> RequestHandle::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return has_pending_ || !failure_.is_ok(); });
  if (has_pending_) {
    StreamDelta d = std::move(pending_);
    pending_ = StreamDelta{};
    has_pending_ = false;
    if (d.finished) taken_done_ = true;
    return d;
  }
  if (!failure_.is_ok()) return error(StatusCode::kUnavailable, "the engine failed: {}", failure_.message());
  if (taken_done_) return error(StatusCode::kOutOfRange, "the request already finished");
  return error(StatusCode::kDeadlineExceeded, "no output within {} ms", timeout.count());
}

void RequestHandle::cancel() { engine_->cancel(*this); }

}  // namespace msi

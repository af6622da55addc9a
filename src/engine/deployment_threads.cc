// The thread deployment: M attention runners and N expert servers on threads of this process,
// connected by two in-process M2N groups that live as long as the deployment.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "backend/registry.h"
#include "engine/attention_runner.h"
#include "engine/deployment.h"
#include "engine/worker_setup.h"
#include "pipeline/chrome_trace.h"
#include "roles/expert_server.h"
#include "roles/host_unit_handler.h"
#include "roles/m2n_expert_link.h"
#include "roles/peer_expert_link.h"
#include "roles/peer_unit_handler.h"

namespace msi {
namespace {

class ThreadDeployment final : public Deployment {
 public:
  ThreadDeployment(EngineOptions options, DeploymentCallbacks callbacks, std::filesystem::path trace_path)
      : options_(std::move(options)), callbacks_(std::move(callbacks)), trace_path_(std::move(trace_path)) {}
  ~ThreadDeployment() override { stop(); }

  Status start(const std::filesystem::path& model_dir);
  int n_attention_workers() const override { return options_.n_attention_workers; }
  Status shutdown(std::chrono::milliseconds timeout) override;
  Status failure() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

 protected:
  Status post(int worker, WorkerEvent event) override {
    MSI_RETURN_IF_ERROR(failure());
    inboxes_[static_cast<size_t>(worker)]->post(std::move(event));
    return Status::ok();
  }

 private:
  void fail(const Status& status);
  void worker_done();
  void stop();

  EngineOptions options_;
  DeploymentCallbacks callbacks_;
  std::filesystem::path trace_path_;
  WorkerSetup setup_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<AttentionWorker>> attention_;
  std::vector<std::unique_ptr<ExpertWorker>> experts_;
  std::vector<std::unique_ptr<ColocatedExpertLink>> colocated_;  // N = 0: one per attention worker
  std::vector<std::unique_ptr<PeerUnitHandler>> peer_handlers_;   // --expert-devices: one per expert worker
  std::unique_ptr<comm::M2NTransport> dispatch_, combine_;
  std::vector<std::unique_ptr<QueueInbox>> inboxes_;
  std::vector<std::unique_ptr<Timeline>> timelines_;
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Status failure_;
  int running_ = 0;
  bool stopped_ = false;
};

void ThreadDeployment::fail(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Keep the root cause: a worker's own error beats a peer being gone or silent because of it.
    const bool consequence = status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kDeadlineExceeded;
    const bool have_root = !failure_.is_ok() && failure_.code() != StatusCode::kUnavailable &&
                           failure_.code() != StatusCode::kDeadlineExceeded;
    if (failure_.is_ok() || (!consequence && !have_root)) failure_ = status;
  }
  // Wake every runner so it notices (its next M2N wait fails on the closed peers).
  for (auto& inbox : inboxes_) inbox->post(WorkerEvent{WorkerEvent::Kind::kShutdown, {}, 0});
}

void ThreadDeployment::worker_done() {
  Status report;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    cv_.notify_all();
    // Report a failure once every worker has stopped, so that the root cause is known.
    if (running_ == 0 && !failure_.is_ok() && !stopped_) report = failure_;
  }
  if (!report.is_ok() && callbacks_.on_failure) callbacks_.on_failure(report);
}

Status ThreadDeployment::start(const std::filesystem::path& model_dir) {
  MSI_ASSIGN_OR_RETURN(setup_, open_worker_setup(model_dir, options_));
  const ModelConfig& config = setup_.config;
  const int m = options_.n_attention_workers, n = options_.n_expert_workers;
  const bool peer = !options_.expert_devices.empty();
  for (int a = 0; a < m; ++a) {
    MSI_ASSIGN_OR_RETURN(auto backend, make_backend(attention_device(options_, a)));
    MSI_ASSIGN_OR_RETURN(auto worker, make_attention_worker(config, setup_, *backend, options_));
    if (n == 0) {
      MSI_ASSIGN_OR_RETURN(auto link, make_colocated_link(config, setup_, *backend, options_));
      colocated_.push_back(std::move(link));
    }
    backends_.push_back(std::move(backend));
    attention_.push_back(std::move(worker));
    inboxes_.push_back(std::make_unique<QueueInbox>());
    if (options_.record_timeline) timelines_.push_back(std::make_unique<Timeline>(attention_label(a)));
  }
  for (int x = 0; x < n; ++x) {
    MSI_ASSIGN_OR_RETURN(auto backend, make_backend(expert_device(options_, x)));
    if (peer) {
      // Each side reads the other's memory: tokens in place, partial sums in place.
      for (int a = 0; a < m; ++a) {
        MSI_RETURN_IF_ERROR(backend->enable_peer_access(*backends_[static_cast<size_t>(a)]));
        MSI_RETURN_IF_ERROR(backends_[static_cast<size_t>(a)]->enable_peer_access(*backend));
      }
      MSI_ASSIGN_OR_RETURN(StackedExpertWeights weights,
                           load_stacked_expert_weights(config, *setup_.source, *backend, setup_.placement.experts_of(x)));
      peer_handlers_.push_back(std::make_unique<PeerUnitHandler>(
          config, *backend, std::move(weights), m, options_.max_batched_tokens, options_.n_micro_batches,
          /*interprocess=*/false,
          setup_.placement.has_replicas() ? setup_.placement.replica_table(x) : std::vector<int32_t>{}));
    } else {
      MSI_ASSIGN_OR_RETURN(auto worker, make_expert_worker(config, setup_, *backend, options_, x));
      experts_.push_back(std::move(worker));
    }
    backends_.push_back(std::move(backend));
    if (options_.record_timeline) timelines_.push_back(std::make_unique<Timeline>(expert_label(x)));
  }
  setup_.source.reset();  // weights are loaded
  if (n > 0) {
    MSI_ASSIGN_OR_RETURN(dispatch_, comm::make_inproc_transport(dispatch_options(config, options_)));
    MSI_ASSIGN_OR_RETURN(combine_, comm::make_inproc_transport(combine_options(config, options_)));
  }
  auto timeline = [&](size_t i) { return options_.record_timeline ? timelines_[i].get() : nullptr; };

  running_ = m + n;
  for (int a = 0; a < m; ++a) {
    threads_.emplace_back([this, a, n, peer, timeline] {
      Status st = [&]() -> Status {
        const RunnerOptions ro = runner_options(options_, setup_.max_model_len, 0x9e3779b97f4a7c15ull * (a + 1));
        CallbackOutbox outbox(a, callbacks_.on_report);
        if (!colocated_.empty()) {
          AttentionRunner runner(setup_.config, *attention_[static_cast<size_t>(a)], *colocated_[static_cast<size_t>(a)],
                                 ro, timeline(static_cast<size_t>(a)));
          return runner.serve(*inboxes_[static_cast<size_t>(a)], outbox);
        }
        MSI_ASSIGN_OR_RETURN(auto sender, dispatch_->open_sender(a));
        MSI_ASSIGN_OR_RETURN(auto receiver, combine_->open_receiver(a));
        if (peer) {
          PeerExpertLink link(setup_.config, *backends_[static_cast<size_t>(a)], std::move(sender), std::move(receiver),
                              n, options_.n_micro_batches);
          AttentionRunner runner(setup_.config, *attention_[static_cast<size_t>(a)], link, ro,
                                 timeline(static_cast<size_t>(a)));
          return runner.serve(*inboxes_[static_cast<size_t>(a)], outbox);
        }
        M2NExpertLink link(*backends_[static_cast<size_t>(a)], setup_.placement, std::move(sender),
                           std::move(receiver), options_.max_batched_tokens, setup_.config.hidden_size,
                           setup_.config.n_experts_per_tok, options_.n_micro_batches);
        AttentionRunner runner(setup_.config, *attention_[static_cast<size_t>(a)], link, ro,
                               timeline(static_cast<size_t>(a)));
        return runner.serve(*inboxes_[static_cast<size_t>(a)], outbox);
      }();
      if (!st.is_ok()) fail(st.with_context(attention_label(a)));
      worker_done();
    });
  }
  for (int x = 0; x < n; ++x) {
    threads_.emplace_back([this, x, m, peer, timeline] {
      Status st = [&]() -> Status {
        MSI_ASSIGN_OR_RETURN(auto receiver, dispatch_->open_receiver(x));
        MSI_ASSIGN_OR_RETURN(auto sender, combine_->open_sender(x));
        std::unique_ptr<HostUnitHandler> host;
        ExpertUnitHandler* handler = nullptr;
        if (peer) {
          handler = peer_handlers_[static_cast<size_t>(x)].get();
        } else {
          host = std::make_unique<HostUnitHandler>(setup_.config, *experts_[static_cast<size_t>(x)], m);
          handler = host.get();
        }
        ExpertServer server(setup_.config, *handler, std::move(receiver), std::move(sender),
                            m, options_.n_micro_batches, timeline(static_cast<size_t>(m + x)));
        return server.run();
      }();
      if (!st.is_ok()) fail(st.with_context(expert_label(x)));
      worker_done();
    });
  }
  return Status::ok();
}

Status ThreadDeployment::shutdown(std::chrono::milliseconds timeout) {
  for (auto& inbox : inboxes_) inbox->post(WorkerEvent{WorkerEvent::Kind::kShutdown, {}, 0});
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return running_ == 0; })) {
      if (failure_.is_ok()) failure_ = error(StatusCode::kDeadlineExceeded, "workers did not stop within {} ms", timeout.count());
    }
  }
  stop();
  MSI_RETURN_IF_ERROR(failure());
  if (!trace_path_.empty() && !timelines_.empty()) {
    std::vector<const Timeline*> all;
    for (const auto& t : timelines_) all.push_back(t.get());
    const int64_t origin = earliest_span_ns(all);
    nlohmann::json events = nlohmann::json::array();
    for (size_t i = 0; i < all.size(); ++i) {
      for (auto& ev : timeline_trace_events(*all[i], 0, static_cast<int>(i), origin)) events.push_back(std::move(ev));
    }
    MSI_RETURN_IF_ERROR(write_chrome_trace(trace_path_, events));
  }
  return Status::ok();
}

void ThreadDeployment::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  // Workers still running (a timed-out shutdown) end when their M2N waits time out or their
  // peers close; joining bounds the wait by the peer timeout.
  for (auto& inbox : inboxes_) inbox->post(WorkerEvent{WorkerEvent::Kind::kShutdown, {}, 0});
  for (auto& t : threads_) t.join();
}

}  // namespace

Result<std::unique_ptr<Deployment>> start_thread_deployment(const std::filesystem::path& model_dir,
                                                            const EngineOptions& options,
                                                            DeploymentCallbacks callbacks,
                                                            const std::filesystem::path& trace_path) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  auto d = std::make_unique<ThreadDeployment>(options, std::move(callbacks), trace_path);
  MSI_RETURN_IF_ERROR(d->start(model_dir));
  return std::unique_ptr<Deployment>(std::move(d));
}

}  // namespace msi

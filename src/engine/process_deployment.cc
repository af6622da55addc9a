// The process deployment: one `msinfer worker` process per attention and expert worker,
// connected by two M2N groups over POSIX shared memory, supervised by a thread of this process.
// With --expert-devices the workers use the peer transport across processes: the mailboxes carry
// only the peer messages, and each worker maps the memory and events its peers name (CUDA IPC)
// from handles exchanged once, at start-up, through a TCP rendezvous (comm/bootstrap.h) that this
// process serves: rank 0 is the supervisor, attention worker a is rank 1 + a, expert worker x is
// rank 1 + M + x.
//
// Supervision: workers die with this process (PR_SET_PDEATHSIG). When any worker fails — an
// error exit or a signal — the supervisor kills the rest at once, reaps them, and fails the
// deployment naming the worker (and its pid and signal). A worker that loses a peer notices
// within milliseconds (M2N checks the peers' pids while waiting), so nothing hangs and nothing
// is left behind.
#include "engine/process_deployment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "backend/registry.h"
#include "comm/bootstrap.h"
#include "engine/attention_runner.h"
#include "engine/deployment.h"
#include "engine/worker_channel_pipe.h"
#include "engine/worker_setup.h"
#include "pipeline/chrome_trace.h"
#include "roles/expert_server.h"
#include "roles/host_unit_handler.h"
#include "roles/m2n_expert_link.h"
#include "roles/peer_expert_link.h"
#include "roles/peer_memory.h"
#include "roles/peer_unit_handler.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kChildEventsFd = 100;   // where a child finds its event pipe
constexpr int kChildReportsFd = 101;  // and its report pipe
// Workers reach the rendezvous after loading their weights, which may take minutes.
constexpr std::chrono::milliseconds kStartupTimeout{600000};

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) return error(StatusCode::kIoError, "cannot write {}", path.string());
  return Status::ok();
}

struct Child {
  pid_t pid = 0;
  std::string label;
  bool running = false;
  int status = 0;
};

std::string describe_exit(const Child& c) {
  if (WIFSIGNALED(c.status)) {
    const int sig = WTERMSIG(c.status);
    return fmt::format("{} (pid {}) was killed by signal {} ({})", c.label, c.pid, sig, strsignal(sig));
  }
  return fmt::format("{} (pid {}) exited with status {}", c.label, c.pid, WEXITSTATUS(c.status));
}

class ProcessDeployment final : public Deployment {
 public:
  ProcessDeployment(EngineOptions options, DeploymentCallbacks callbacks, fs::path trace_path, fs::path self_exe)
      : options_(std::move(options)), callbacks_(std::move(callbacks)), trace_path_(std::move(trace_path)),
        self_exe_(std::move(self_exe)) {}
  ~ProcessDeployment() override;

  Status start(const fs::path& model_dir);
  int n_attention_workers() const override { return options_.n_attention_workers; }
  Status shutdown(std::chrono::milliseconds timeout) override;
  Status failure() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

 protected:
  Status post(int worker, WorkerEvent event) override;

 private:
  Result<pid_t> spawn(const std::string& role, int index, int events_fd, int reports_fd);
  void supervise();
  void read_reports(int worker);
  void kill_all();

  EngineOptions options_;
  DeploymentCallbacks callbacks_;
  fs::path trace_path_, self_exe_, dir_;
  std::unique_ptr<comm::M2NTransport> dispatch_, combine_;
  std::unique_ptr<comm::Rendezvous> rendezvous_;  // --expert-devices: the peers' handles
  std::vector<Child> children_;  // experts first, then attention workers
  std::vector<int> event_fds_, report_fds_;  // this process's ends, per attention worker
  // NOTE: events are written by one thread per attention worker from an unbounded queue, so
  // post() never blocks. A blocking write could deadlock: the report reader calls back into the
  // frontend, which may post (an abort) while the worker, blocked on a full report pipe, is not
  // reading its events.
  struct EventQueue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> lines;
    bool closed = false;
  };
  std::vector<std::unique_ptr<EventQueue>> event_queues_;
  void write_events(int worker);
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Status failure_;
  bool all_exited_ = false;
  bool stopping_ = false;
};

Result<pid_t> ProcessDeployment::spawn(const std::string& role, int index, int events_fd, int reports_fd) {
  const std::string index_text = std::to_string(index);
  const fs::path job = dir_ / "job.json";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return error(StatusCode::kInternal, "fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    // Die with the supervisor, even if it is killed; if it is already gone, stop now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;  // the server blocks SIGINT/SIGTERM for its signal thread; workers must not
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // The child's pipe ends at fixed numbers (dup2 clears close-on-exec); all others close on exec.
    if (events_fd >= 0 && ::dup2(events_fd, kChildEventsFd) < 0) ::_exit(127);
    if (reports_fd >= 0 && ::dup2(reports_fd, kChildReportsFd) < 0) ::_exit(127);
    const std::string ev = events_fd >= 0 ? std::to_string(kChildEventsFd) : "-1";
    const std::string rp = reports_fd >= 0 ? std::to_string(kChildReportsFd) : "-1";
    const char* argv[] = {"msinfer", "worker", "--job", job.c_str(), "--role", role.c_str(), "--index",
                          index_text.c_str(), "--events-fd", ev.c_str(), "--reports-fd", rp.c_str(), nullptr};
    ::execv(self_exe_.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "msinfer: cannot run %s: %s\n", self_exe_.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

Status ProcessDeployment::start(const fs::path& model_dir) {
  const nlohmann::json* overrides = options_.hf_overrides.is_null() ? nullptr : &options_.hf_overrides;
  MSI_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(model_dir, overrides));
  MSI_RETURN_IF_ERROR(resolve_max_model_len(config, options_).status());
  MSI_RETURN_IF_ERROR(ExpertPlacement::contiguous(config.n_experts, std::max(options_.n_expert_workers, 1)).status());
  const bool colocated = options_.n_expert_workers == 0;

  std::string dir_template = (fs::temp_directory_path() / "msinfer-job-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return error(StatusCode::kIoError, "cannot make a job directory: {}", std::strerror(errno));
  }
  dir_ = dir_template;
  const std::string shm_base = fmt::format("/msinfer-{}-{}", ::getpid(), dir_.filename().string());
  if (!colocated) {  // colocated experts need no M2N groups
    MSI_ASSIGN_OR_RETURN(dispatch_, comm::create_shm_transport(shm_base + "-dispatch", dispatch_options(config, options_)));
    MSI_ASSIGN_OR_RETURN(combine_, comm::create_shm_transport(shm_base + "-combine", combine_options(config, options_)));
  }
  EngineOptions worker_options = options_;
  worker_options.record_timeline = !trace_path_.empty();
  json job = {{"model_dir", model_dir.string()}, {"options", engine_options_to_json(worker_options)},
              {"shm_dispatch", shm_base + "-dispatch"}, {"shm_combine", shm_base + "-combine"},
              {"out_dir", dir_.string()}, {"origin_ns", Timeline::now_ns()}};
  if (!options_.expert_devices.empty()) {
    // MASTER_ADDR/MASTER_PORT, when set, say where it listens.
    MSI_ASSIGN_OR_RETURN(comm::BootstrapOptions bo, comm::supervisor_bootstrap_options(
                                                        1 + options_.n_attention_workers + options_.n_expert_workers));
    bo.timeout = kStartupTimeout;
    Result<std::unique_ptr<comm::Rendezvous>> served = comm::Rendezvous::serve(bo);
    if (!served.is_ok()) return served.status().with_context("serving the workers' rendezvous");
    rendezvous_ = std::move(*served);
    job["rendezvous"] = {{"host", comm::local_connect_host(bo.host)}, {"port", rendezvous_->port()},
                         {"world_size", bo.world_size}};
  }
  MSI_RETURN_IF_ERROR(write_text(dir_ / "job.json", job.dump()));

  for (int x = 0; x < options_.n_expert_workers; ++x) {
    MSI_ASSIGN_OR_RETURN(pid_t pid, spawn("expert", x, -1, -1));
    children_.push_back({pid, expert_label(x), true});
  }
  for (int a = 0; a < options_.n_attention_workers; ++a) {
    int ev[2], rp[2];
    if (::pipe2(ev, O_CLOEXEC) != 0 || ::pipe2(rp, O_CLOEXEC) != 0) {
      return error(StatusCode::kInternal, "pipe failed: {}", std::strerror(errno));
    }
    Result<pid_t> pid = spawn("attention", a, ev[0], rp[1]);
    ::close(ev[0]);
    ::close(rp[1]);
    event_fds_.push_back(ev[1]);
    report_fds_.push_back(rp[0]);
    event_queues_.push_back(std::make_unique<EventQueue>());
    MSI_RETURN_IF_ERROR(pid.status());
    children_.push_back({*pid, attention_label(a), true});
  }
  threads_.emplace_back([this] { supervise(); });
  for (int a = 0; a < options_.n_attention_workers; ++a) {
    threads_.emplace_back([this, a] { read_reports(a); });
    threads_.emplace_back([this, a] { write_events(a); });
  }
  return Status::ok();
}

void ProcessDeployment::supervise() {
  // Poll our own children only (never waitpid(-1): other children of this process are not ours).
  size_t running = children_.size();
  const Child* failed = nullptr;
  std::chrono::steady_clock::time_point failed_at;
  while (running > 0) {
    for (Child& c : children_) {
      if (!c.running) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
      c.running = false;
      c.status = status;
      --running;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      // A worker killed by a signal is a root cause; prefer it over peers that exit with errors.
      if (!ok && (failed == nullptr || (WIFSIGNALED(status) && !WIFSIGNALED(failed->status)))) {
        if (failed == nullptr) failed_at = std::chrono::steady_clock::now();
        failed = &c;
      }
    }
    // After a failure, give the others a moment to report, then stop them.
    if (failed && std::chrono::steady_clock::now() - failed_at > std::chrono::milliseconds(300)) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && !failed) {  // a forced stop: kill and reap below
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill_all();
  Status failure = failed ? error(StatusCode::kUnavailable, "{}", describe_exit(*failed)) : Status::ok();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.is_ok()) failure_ = failure;
    all_exited_ = true;
  }
  cv_.notify_all();
  if (failed && callbacks_.on_failure) callbacks_.on_failure(failure);
}

void ProcessDeployment::kill_all() {
  for (Child& c : children_) {
    if (c.running) ::kill(c.pid, SIGKILL);
  }
  for (Child& c : children_) {
    if (!c.running) continue;
    ::waitpid(c.pid, &c.status, 0);
    c.running = false;
  }
}

void ProcessDeployment::read_reports(int worker) {
  LineReader reader(report_fds_[static_cast<size_t>(worker)]);
  std::vector<std::string> lines;
  for (;;) {
    (void)reader.wait_readable(std::chrono::milliseconds(100));
    lines.clear();
    Status st = reader.read_available(lines);
    for (const std::string& line : lines) {
      auto j = json::parse(line, nullptr, false);
      auto report = j.is_discarded() ? Result<WorkerReport>(error(StatusCode::kInternal, "bad report line"))
                                     : report_from_json(j);
      if (report.is_ok() && callbacks_.on_report) callbacks_.on_report(worker, *report);
    }
    if (!st.is_ok()) return;  // the worker closed its end: it exited
  }
}

Status ProcessDeployment::post(int worker, WorkerEvent event) {
  MSI_RETURN_IF_ERROR(failure());
  EventQueue& q = *event_queues_[static_cast<size_t>(worker)];
  {
    std::lock_guard<std::mutex> lock(q.mu);
    if (q.closed) return error(StatusCode::kUnavailable, "{} is gone", attention_label(worker));
    q.lines.push_back(event_to_json(event).dump());
  }
  q.cv.notify_one();
  return Status::ok();
}

void ProcessDeployment::write_events(int worker) {
  EventQueue& q = *event_queues_[static_cast<size_t>(worker)];
  LineWriter writer(event_fds_[static_cast<size_t>(worker)]);
  for (;;) {
    std::string line;
    {
      std::unique_lock<std::mutex> lock(q.mu);
      q.cv.wait(lock, [&] { return q.closed || !q.lines.empty(); });
      if (q.lines.empty()) return;  // closed and drained
      line = std::move(q.lines.front());
      q.lines.pop_front();
    }
    if (!writer.write_line(line).is_ok()) {  // the worker is gone; the supervisor reports why
      std::lock_guard<std::mutex> lock(q.mu);
      q.closed = true;
      q.lines.clear();
      return;
    }
  }
}

Status ProcessDeployment::shutdown(std::chrono::milliseconds timeout) {
  for (int a = 0; a < options_.n_attention_workers; ++a) (void)post(a, WorkerEvent{WorkerEvent::Kind::kShutdown, {}, 0});
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return all_exited_; })) {
      if (failure_.is_ok()) failure_ = error(StatusCode::kDeadlineExceeded, "workers did not stop within {} ms", timeout.count());
      stopping_ = true;
    }
  }
  MSI_RETURN_IF_ERROR(failure());
  if (!trace_path_.empty()) {
    json events = json::array();
    for (const char* role : {"attention", "expert"}) {
      const int n = std::string(role) == "attention" ? options_.n_attention_workers : options_.n_expert_workers;
      for (int i = 0; i < n; ++i) {
        MSI_ASSIGN_OR_RETURN(json part, read_json_file(dir_ / fmt::format("trace-{}-{}.json", role, i)));
        for (auto& ev : part) events.push_back(std::move(ev));
      }
    }
    MSI_RETURN_IF_ERROR(write_chrome_trace(trace_path_, events));
  }
  return Status::ok();
}

ProcessDeployment::~ProcessDeployment() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  for (auto& q : event_queues_) {  // the writers drain what is queued, then end
    std::lock_guard<std::mutex> lock(q->mu);
    q->closed = true;
    q->cv.notify_all();
  }
  for (auto& t : threads_) t.join();       // the supervisor kills and reaps what is left
  for (int fd : event_fds_) ::close(fd);
  kill_all();
  for (int fd : report_fds_) ::close(fd);
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

// ---- the worker side ----

// Publishes this worker's exports under "<role>/<index>" and imports every peer's
// ("<peer_role>/<i>", i < n_peers) through the job's rendezvous.
Result<std::vector<PeerMemoryMap>> exchange_peer_handles(const json& job, Backend& backend, const std::string& role,
                                                         int index, const PeerExports& exports,
                                                         const std::string& peer_role, int n_peers) {
  const json& r = job.at("rendezvous");
  const int n_attention = job.at("options").at("n_attention_workers").get<int>();
  comm::BootstrapOptions bo;
  bo.host = r.at("host").get<std::string>();
  bo.port = r.at("port").get<int>();
  bo.world_size = r.at("world_size").get<int>();
  bo.rank = role == "attention" ? 1 + index : 1 + n_attention + index;
  bo.timeout = kStartupTimeout;
  MSI_ASSIGN_OR_RETURN(auto rendezvous, comm::Rendezvous::connect(bo));
  MSI_RETURN_IF_ERROR(rendezvous->set(fmt::format("{}/{}", role, index), exports.serialize()));
  std::vector<PeerMemoryMap> peers;
  for (int i = 0; i < n_peers; ++i) {
    MSI_ASSIGN_OR_RETURN(std::vector<std::byte> blob, rendezvous->get(fmt::format("{}/{}", peer_role, i)));
    MSI_ASSIGN_OR_RETURN(PeerExports theirs, PeerExports::parse(blob));
    const std::string label = peer_role == "attention" ? attention_label(i) : expert_label(i);
    MSI_ASSIGN_OR_RETURN(PeerMemoryMap map, PeerMemoryMap::import(backend, theirs, label));
    peers.push_back(std::move(map));
  }
  return peers;
}

Status run_worker(const json& job, const std::string& role, int index, int events_fd, int reports_fd) {
  MSI_ASSIGN_OR_RETURN(EngineOptions options, engine_options_from_json(job.at("options")));
  const fs::path out_dir = job.at("out_dir").get<std::string>();
  MSI_ASSIGN_OR_RETURN(WorkerSetup setup, open_worker_setup(job.at("model_dir").get<std::string>(), options));
  MSI_ASSIGN_OR_RETURN(auto backend, make_backend(role == "attention" ? attention_device(options, index)
                                                                       : expert_device(options, index)));
  const bool peer = !options.expert_devices.empty();
  const bool colocated = options.n_expert_workers == 0;
  std::unique_ptr<comm::M2NTransport> dispatch, combine;
  if (!colocated) {
    MSI_ASSIGN_OR_RETURN(dispatch, comm::open_shm_transport(job.at("shm_dispatch"), dispatch_options(setup.config, options)));
    MSI_ASSIGN_OR_RETURN(combine, comm::open_shm_transport(job.at("shm_combine"), combine_options(setup.config, options)));
  }
  const int n_attention = options.n_attention_workers;
  const int track = role == "attention" ? index : n_attention + index;  // as in-process
  std::unique_ptr<Timeline> timeline;
  if (options.record_timeline) {
    timeline = std::make_unique<Timeline>(role == "attention" ? attention_label(index) : expert_label(index));
  }
  if (role == "attention") {
    if (index < 0 || index >= n_attention) return error(StatusCode::kInvalidArgument, "no attention worker {}", index);
    if (events_fd < 0 || reports_fd < 0) return error(StatusCode::kInvalidArgument, "an attention worker needs its pipes");
    MSI_ASSIGN_OR_RETURN(auto worker, make_attention_worker(setup.config, setup, *backend, options));
    std::unique_ptr<ExpertLink> link;
    if (colocated) {
      MSI_ASSIGN_OR_RETURN(link, make_colocated_link(setup.config, setup, *backend, options));
    } else if (peer) {
      MSI_ASSIGN_OR_RETURN(auto sender, dispatch->open_sender(index));
      MSI_ASSIGN_OR_RETURN(auto receiver, combine->open_receiver(index));
      auto peer_link = std::make_unique<PeerExpertLink>(setup.config, *backend, std::move(sender), std::move(receiver),
                                                        options.n_expert_workers, options.n_micro_batches,
                                                        /*interprocess=*/true);
      const std::vector<Tensor> buffers = worker->peer_send_buffers();
      MSI_ASSIGN_OR_RETURN(PeerExports exports, export_for_peers(*backend, buffers, peer_link->events()));
      MSI_ASSIGN_OR_RETURN(auto peers, exchange_peer_handles(job, *backend, "attention", index, exports,
                                                             "expert", options.n_expert_workers));
      peer_link->set_peers(std::move(peers));
      link = std::move(peer_link);
    } else {
      MSI_ASSIGN_OR_RETURN(auto sender, dispatch->open_sender(index));
      MSI_ASSIGN_OR_RETURN(auto receiver, combine->open_receiver(index));
      link = std::make_unique<M2NExpertLink>(*backend, setup.placement, std::move(sender), std::move(receiver),
                                             options.max_batched_tokens, setup.config.hidden_size,
                                             setup.config.n_experts_per_tok, options.n_micro_batches);
    }
    setup.source.reset();
    AttentionRunner runner(setup.config, *worker, *link,
                           runner_options(options, setup.max_model_len, 0x9e3779b97f4a7c15ull * (index + 1)),
                           timeline.get());
    PipeInbox inbox(events_fd);
    PipeOutbox outbox(reports_fd);
    MSI_RETURN_IF_ERROR(runner.serve(inbox, outbox));
  } else if (role == "expert") {
    if (index < 0 || index >= options.n_expert_workers) return error(StatusCode::kInvalidArgument, "no expert worker {}", index);
    std::unique_ptr<ExpertWorker> worker;
    std::unique_ptr<ExpertUnitHandler> handler;
    if (peer) {
      MSI_ASSIGN_OR_RETURN(StackedExpertWeights weights,
                           load_stacked_expert_weights(setup.config, *setup.source, *backend,
                                                       setup.placement.experts_of(index)));
      auto peer_handler = std::make_unique<PeerUnitHandler>(
          setup.config, *backend, std::move(weights), n_attention, options.max_batched_tokens, options.n_micro_batches,
          /*interprocess=*/true,
          setup.placement.has_replicas() ? setup.placement.replica_table(index) : std::vector<int32_t>{});
      const std::vector<Tensor> buffers = peer_handler->exported_allocations();
      MSI_ASSIGN_OR_RETURN(PeerExports exports, export_for_peers(*backend, buffers, peer_handler->events()));
      MSI_ASSIGN_OR_RETURN(auto peers, exchange_peer_handles(job, *backend, "expert", index, exports,
                                                             "attention", n_attention));
      peer_handler->set_peers(std::move(peers));
      handler = std::move(peer_handler);
    } else {
      MSI_ASSIGN_OR_RETURN(worker, make_expert_worker(setup.config, setup, *backend, options, index));
      handler = std::make_unique<HostUnitHandler>(setup.config, *worker, n_attention);
    }
    setup.source.reset();
    MSI_ASSIGN_OR_RETURN(auto receiver, dispatch->open_receiver(index));
    MSI_ASSIGN_OR_RETURN(auto sender, combine->open_sender(index));
    ExpertServer server(setup.config, *handler, std::move(receiver), std::move(sender), n_attention,
                        options.n_micro_batches, timeline.get());
    MSI_RETURN_IF_ERROR(server.run());
  } else {
    return error(StatusCode::kInvalidArgument, "unknown worker role '{}' (attention, expert)", role);
  }
  if (timeline) {
    json events = timeline_trace_events(*timeline, 0, track, job.at("origin_ns").get<int64_t>());
    MSI_RETURN_IF_ERROR(write_text(out_dir / fmt::format("trace-{}-{}.json", role, index), events.dump()));
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Deployment>> start_process_deployment(const fs::path& model_dir, const EngineOptions& options,
                                                             DeploymentCallbacks callbacks, const fs::path& trace_path,
                                                             const fs::path& self_exe) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  auto d = std::make_unique<ProcessDeployment>(options, std::move(callbacks), trace_path, self_exe);
  MSI_RETURN_IF_ERROR(d->start(model_dir));
  return std::unique_ptr<Deployment>(std::move(d));
}

int run_worker_process(const fs::path& job_file, const std::string& role, int index, int events_fd, int reports_fd) {
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an error return, not a signal
  const std::string label = role + " worker " + std::to_string(index);
  Status st = Status::ok();
  try {
    auto job = read_json_file(job_file);
    st = job.is_ok() ? run_worker(*job, role, index, events_fd, reports_fd) : job.status();
  } catch (const nlohmann::json::exception& e) {
    st = error(StatusCode::kInvalidArgument, "bad job file {}: {}", job_file.string(), e.what());
  }
  if (!st.is_ok()) {
    std::fprintf(stderr, "msinfer: %s: %s\n", label.c_str(), st.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace msi

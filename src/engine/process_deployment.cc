#include "engine/process_deployment.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "backend/registry.h"
#include "engine/attention_runner.h"
#include "engine/worker_setup.h"
#include "pipeline/chrome_trace.h"
#include "roles/expert_server.h"
#include "roles/m2n_expert_link.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json options_to_json(const EngineOptions& o) {
  return {{"device", o.device}, {"load_format", o.load_format}, {"dummy_seed", o.dummy_seed},
          {"hf_overrides", o.hf_overrides}, {"n_attention_workers", o.n_attention_workers},
          {"n_expert_workers", o.n_expert_workers}, {"n_micro_batches", o.n_micro_batches},
          {"max_batched_tokens", o.max_batched_tokens}, {"max_seqs", o.max_seqs},
          {"kv_block_size", o.kv_block_size}, {"kv_n_blocks", o.kv_n_blocks},
          {"max_model_len", o.max_model_len}, {"peer_timeout_ms", o.peer_timeout.count()},
          {"record_timeline", o.record_timeline}};
}

EngineOptions options_from_json(const json& j) {
  EngineOptions o;
  o.device = j.at("device");
  o.load_format = j.at("load_format");
  o.dummy_seed = j.at("dummy_seed");
  o.hf_overrides = j.at("hf_overrides");
  o.n_attention_workers = j.at("n_attention_workers");
  o.n_expert_workers = j.at("n_expert_workers");
  o.n_micro_batches = j.at("n_micro_batches");
  o.max_batched_tokens = j.at("max_batched_tokens");
  o.max_seqs = j.at("max_seqs");
  o.kv_block_size = j.at("kv_block_size");
  o.kv_n_blocks = j.at("kv_n_blocks");
  o.max_model_len = j.at("max_model_len");
  o.peer_timeout = std::chrono::milliseconds(j.at("peer_timeout_ms").get<int64_t>());
  o.record_timeline = j.at("record_timeline");
  return o;
}

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

// Kills every running child and reaps it.
void kill_all(std::vector<Child>& children) {
  for (Child& c : children) {
    if (c.running) ::kill(c.pid, SIGKILL);
  }
  for (Child& c : children) {
    if (!c.running) continue;
    ::waitpid(c.pid, &c.status, 0);
    c.running = false;
  }
}

Result<pid_t> spawn_worker(const fs::path& exe, const fs::path& job, const std::string& role, int index) {
  const std::string index_text = std::to_string(index);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return error(StatusCode::kInternal, "fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    // Die with the supervisor, even if it is killed; if it is already gone, stop now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const char* argv[] = {"msinfer", "worker", "--job", job.c_str(), "--role", role.c_str(), "--index",
                          index_text.c_str(), nullptr};
    ::execv(exe.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "msinfer: cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

}  // namespace

Result<std::vector<GenerateResult>> generate_in_processes(const fs::path& model_dir, const EngineOptions& options,
                                                          const std::vector<GenerateRequest>& requests,
                                                          const ProcessDeploymentOptions& popt) {
  MSI_RETURN_IF_ERROR(validate_engine_options(options));
  const nlohmann::json* overrides = options.hf_overrides.is_null() ? nullptr : &options.hf_overrides;
  MSI_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(model_dir, overrides));
  MSI_ASSIGN_OR_RETURN(int64_t max_len, resolve_max_model_len(config, options));
  MSI_RETURN_IF_ERROR(validate_requests(config, max_len, requests));
  MSI_RETURN_IF_ERROR(ExpertPlacement::contiguous(config.n_experts, options.n_expert_workers).status());

  // A private directory for the job, the results and the traces.
  std::string dir_template = (fs::temp_directory_path() / "msinfer-job-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return error(StatusCode::kIoError, "cannot make a job directory: {}", std::strerror(errno));
  }
  const fs::path dir = dir_template;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};

  const std::string shm_base = fmt::format("/msinfer-{}-{}", ::getpid(), dir.filename().string());
  MSI_ASSIGN_OR_RETURN(auto dispatch, comm::create_shm_transport(shm_base + "-dispatch", dispatch_options(config, options)));
  MSI_ASSIGN_OR_RETURN(auto combine, comm::create_shm_transport(shm_base + "-combine", combine_options(config, options)));

  const std::vector<int> owner = assign_requests(requests, options.n_attention_workers);
  json per_worker = json::array();
  for (int a = 0; a < options.n_attention_workers; ++a) {
    json list = json::array();
    for (size_t i = 0; i < requests.size(); ++i) {
      if (owner[i] == a) list.push_back(request_to_json(requests[i]));
    }
    per_worker.push_back(std::move(list));
  }
  EngineOptions worker_options = options;
  worker_options.record_timeline = !popt.trace_path.empty();
  const json job = {{"model_dir", model_dir.string()}, {"options", options_to_json(worker_options)},
                    {"shm_dispatch", shm_base + "-dispatch"}, {"shm_combine", shm_base + "-combine"},
                    {"requests", per_worker}, {"out_dir", dir.string()}, {"origin_ns", Timeline::now_ns()}};
  const fs::path job_file = dir / "job.json";
  MSI_RETURN_IF_ERROR(write_text(job_file, job.dump()));

  std::vector<Child> children;
  Status spawn_status = Status::ok();
  for (int x = 0; x < options.n_expert_workers && spawn_status.is_ok(); ++x) {
    auto pid = spawn_worker(popt.self_exe, job_file, "expert", x);
    if (pid.is_ok()) children.push_back({*pid, expert_label(x), true});
    else spawn_status = pid.status();
  }
  for (int a = 0; a < options.n_attention_workers && spawn_status.is_ok(); ++a) {
    auto pid = spawn_worker(popt.self_exe, job_file, "attention", a);
    if (pid.is_ok()) children.push_back({*pid, attention_label(a), true});
    else spawn_status = pid.status();
  }
  if (!spawn_status.is_ok()) {
    kill_all(children);
    return spawn_status;
  }

  // Supervise: wait for all; on the first failure, give the others a moment to report (the
  // root cause often exits first, its peers right after), then kill and reap the rest.
  size_t running = children.size();
  const Child* failed = nullptr;
  std::chrono::steady_clock::time_point failed_at;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (Child& c : children) {
        if (c.pid != pid || !c.running) continue;
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
      continue;
    }
    if (failed && std::chrono::steady_clock::now() - failed_at > std::chrono::milliseconds(300)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill_all(children);
  if (failed) return error(StatusCode::kUnavailable, "{}", describe_exit(*failed));

  // Collect the results in request order.
  std::vector<std::vector<GenerateResult>> per_results(static_cast<size_t>(options.n_attention_workers));
  for (int a = 0; a < options.n_attention_workers; ++a) {
    MSI_ASSIGN_OR_RETURN(json r, read_json_file(dir / fmt::format("results-{}.json", a)));
    for (const json& item : r) {
      MSI_ASSIGN_OR_RETURN(GenerateResult res, result_from_json(item));
      per_results[static_cast<size_t>(a)].push_back(std::move(res));
    }
  }
  std::vector<GenerateResult> results(requests.size());
  std::vector<size_t> next(per_results.size(), 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto w = static_cast<size_t>(owner[i]);
    if (next[w] >= per_results[w].size()) return error(StatusCode::kInternal, "{} returned too few results", attention_label(owner[i]));
    results[i] = std::move(per_results[w][next[w]++]);
  }

  if (!popt.trace_path.empty()) {
    json events = json::array();
    for (const char* role : {"attention", "expert"}) {
      const int n = std::string(role) == "attention" ? options.n_attention_workers : options.n_expert_workers;
      for (int i = 0; i < n; ++i) {
        MSI_ASSIGN_OR_RETURN(json part, read_json_file(dir / fmt::format("trace-{}-{}.json", role, i)));
        for (auto& ev : part) events.push_back(std::move(ev));
      }
    }
    MSI_RETURN_IF_ERROR(write_chrome_trace(popt.trace_path, events));
  }
  return results;
}

namespace {

Status run_worker(const json& job, const std::string& role, int index) {
  const EngineOptions options = options_from_json(job.at("options"));
  const fs::path out_dir = job.at("out_dir").get<std::string>();
  MSI_ASSIGN_OR_RETURN(WorkerSetup setup, open_worker_setup(job.at("model_dir").get<std::string>(), options));
  MSI_ASSIGN_OR_RETURN(auto backend, make_backend(options.device));
  MSI_ASSIGN_OR_RETURN(auto dispatch, comm::open_shm_transport(job.at("shm_dispatch"), dispatch_options(setup.config, options)));
  MSI_ASSIGN_OR_RETURN(auto combine, comm::open_shm_transport(job.at("shm_combine"), combine_options(setup.config, options)));
  const int n_attention = options.n_attention_workers;
  // Track index in the trace: attention workers first, then expert workers (as in-process).
  const int track = role == "attention" ? index : n_attention + index;
  std::unique_ptr<Timeline> timeline;
  if (options.record_timeline) {
    timeline = std::make_unique<Timeline>(role == "attention" ? attention_label(index) : expert_label(index));
  }

  if (role == "attention") {
    if (index < 0 || index >= n_attention) return error(StatusCode::kInvalidArgument, "no attention worker {}", index);
    std::vector<GenerateRequest> requests;
    for (const json& r : job.at("requests").at(static_cast<size_t>(index))) {
      MSI_ASSIGN_OR_RETURN(GenerateRequest req, request_from_json(r));
      requests.push_back(std::move(req));
    }
    MSI_ASSIGN_OR_RETURN(auto worker, make_attention_worker(setup.config, setup, *backend, options));
    MSI_ASSIGN_OR_RETURN(auto sender, dispatch->open_sender(index));
    MSI_ASSIGN_OR_RETURN(auto receiver, combine->open_receiver(index));
    M2NExpertLink link(*backend, setup.placement, std::move(sender), std::move(receiver), options.max_batched_tokens,
                       setup.config.hidden_size, setup.config.n_experts_per_tok, options.n_micro_batches);
    AttentionRunner runner(setup.config, *worker, link,
                           runner_options(options, setup.max_model_len, static_cast<uint64_t>(::getpid()) << 20),
                           timeline.get());
    MSI_ASSIGN_OR_RETURN(auto results, runner.run(requests));
    json out = json::array();
    for (const auto& r : results) out.push_back(result_to_json(r));
    MSI_RETURN_IF_ERROR(write_text(out_dir / fmt::format("results-{}.json", index), out.dump()));
  } else if (role == "expert") {
    if (index < 0 || index >= options.n_expert_workers) return error(StatusCode::kInvalidArgument, "no expert worker {}", index);
    MSI_ASSIGN_OR_RETURN(auto worker, make_expert_worker(setup.config, setup, *backend, options, index));
    MSI_ASSIGN_OR_RETURN(auto receiver, dispatch->open_receiver(index));
    MSI_ASSIGN_OR_RETURN(auto sender, combine->open_sender(index));
    ExpertServer server(setup.config, *worker, std::move(receiver), std::move(sender), n_attention,
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

int run_worker_process(const fs::path& job_file, const std::string& role, int index) {
  const std::string label = role + " worker " + std::to_string(index);
  Status st = Status::ok();
  try {
    auto job = read_json_file(job_file);
    st = job.is_ok() ? run_worker(*job, role, index) : job.status();
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

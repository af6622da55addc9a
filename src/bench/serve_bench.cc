#include "bench/serve_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/check.h"

namespace msi::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kCompletions = "/v1/completions";
constexpr const char* kChatCompletions = "/v1/chat/completions";
// Worker threads stop growing here; beyond it requests wait for a free worker, so concurrency is
// capped at this many even when unlimited was asked for.
constexpr int64_t kMaxWorkers = 4096;
constexpr auto kProgressPeriod = std::chrono::milliseconds(500);

Status validate(const ServeBenchConfig& c) {
  if (c.port < 1 || c.port > 65535) {
    return error(StatusCode::kInvalidArgument, "--port must be in [1, 65535], got {}", c.port);
  }
  if (c.endpoint != kCompletions && c.endpoint != kChatCompletions) {
    return error(StatusCode::kInvalidArgument, "--endpoint must be {} or {}, got '{}'",
                 kCompletions, kChatCompletions, c.endpoint);
  }
  if (c.dataset_name != "random" && c.dataset_name != "sharegpt") {
    return error(StatusCode::kInvalidArgument,
                 "--dataset-name must be random or sharegpt, got '{}'", c.dataset_name);
  }
  if (c.dataset_name == "sharegpt" && c.dataset_path.empty()) {
    return error(StatusCode::kInvalidArgument, "--dataset-name sharegpt needs --dataset-path");
  }
  if (c.n_prompts < 1) return error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (!(c.request_rate > 0.0)) {
    return error(StatusCode::kInvalidArgument, "--request-rate must be > 0 (or inf), got {}",
                 c.request_rate);
  }
  if (c.max_concurrency < 0) {
    return error(StatusCode::kInvalidArgument, "--max-concurrency must be >= 0");
  }
  if (!(c.timeout_s > 0.0) || !std::isfinite(c.timeout_s)) {
    return error(StatusCode::kInvalidArgument, "--timeout must be a positive number of seconds");
  }
  return Status::ok();
}

std::string local_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string rate_text(double rate) { return std::isinf(rate) ? "inf" : fmt::format("{}", rate); }

// Sends request i at origin + arrival_s[i] on a pool of worker threads that grows while every
// worker is busy, holding at most max_concurrency (0: unlimited) requests in flight.
class RequestRunner {
 public:
  RequestRunner(const ServeBenchConfig& config, const std::vector<BenchRequest>& requests,
                const std::vector<std::string>& bodies, const std::vector<double>& arrival_s)
      : config_(config), requests_(requests), bodies_(bodies), arrival_s_(arrival_s) {
    target_ = HttpTarget{config.host, config.port, config.timeout_s};
    chat_ = config.endpoint == kChatCompletions;
  }

  // Fills `outputs` [n] and returns the benchmark duration in seconds.
  double run(std::vector<RequestOutput>& outputs, int64_t& max_in_flight) {
    const size_t n = requests_.size();
    outputs.assign(n, RequestOutput{});
    outputs_ = &outputs;
    origin_ = Clock::now();
    std::thread progress;
    if (config_.progress) progress = std::thread([this] { report_progress(); });

    for (size_t i = 0; i < n; ++i) {
      std::this_thread::sleep_until(origin_ + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(arrival_s_[i])));
      std::unique_lock<std::mutex> lock(mu_);
      if (config_.max_concurrency > 0) {
        wait_bounded(lock, [&] { return n_in_flight_ < config_.max_concurrency; });
      }
      ++n_in_flight_;
      max_in_flight_ = std::max(max_in_flight_, n_in_flight_);
      queue_.push_back(i);
      if (n_idle_ >= static_cast<int64_t>(queue_.size()) ||
          static_cast<int64_t>(workers_.size()) >= kMaxWorkers) {
        work_cv_.notify_one();
      } else {
        workers_.emplace_back([this] { work(); });
      }
    }

    std::unique_lock<std::mutex> lock(mu_);
    wait_bounded(lock, [&] { return n_done_ == static_cast<int64_t>(n); });
    const double duration_s = std::chrono::duration<double>(Clock::now() - origin_).count();
    closing_ = true;
    work_cv_.notify_all();
    state_cv_.notify_all();
    lock.unlock();
    for (std::thread& t : workers_) t.join();
    if (progress.joinable()) progress.join();
    max_in_flight = max_in_flight_;
    return duration_s;
  }

 private:
  // Waits for `done` while requests finish. NOTE: every request ends within about twice the
  // timeout (see stream_request), so a wait with no request finishing for three timeouts means
  // the HTTP timeouts failed: a bug, not a slow server.
  template <typename Pred>
  void wait_bounded(std::unique_lock<std::mutex>& lock, Pred done) {
    const auto stall = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(3.0 * config_.timeout_s + 10.0));
    while (!done()) {
      const int64_t n_done_before = n_done_;
      const bool woke =
          state_cv_.wait_for(lock, stall, [&] { return done() || n_done_ != n_done_before; });
      MSI_CHECK(woke, "no request finished in {} s although each has a {} s timeout",
                3.0 * config_.timeout_s + 10.0, config_.timeout_s);
    }
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++n_idle_;
      work_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      --n_idle_;
      if (queue_.empty()) return;
      const size_t i = queue_.front();
      queue_.pop_front();
      lock.unlock();
      RequestOutput out = stream_request(target_, config_.endpoint, bodies_[i], chat_, origin_);
      out.prompt_len = requests_[i].prompt_len;
      (*outputs_)[i] = std::move(out);  // each index has one writer; read after join
      lock.lock();
      --n_in_flight_;
      ++n_done_;
      state_cv_.notify_all();
    }
  }

  void report_progress() {
    std::unique_lock<std::mutex> lock(mu_);
    const size_t n = requests_.size();
    for (;;) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - origin_).count();
      std::fprintf(stderr, "\r[bench] %lld/%zu done, %lld in flight, %.1f s",
                   static_cast<long long>(n_done_), n, static_cast<long long>(n_in_flight_),
                   elapsed);
      std::fflush(stderr);
      if (closing_) break;
      state_cv_.wait_for(lock, kProgressPeriod, [&] { return closing_; });
    }
    std::fprintf(stderr, "\n");
  }

  const ServeBenchConfig& config_;
  const std::vector<BenchRequest>& requests_;
  const std::vector<std::string>& bodies_;
  const std::vector<double>& arrival_s_;
  HttpTarget target_;
  bool chat_ = false;
  Clock::time_point origin_;
  std::vector<RequestOutput>* outputs_ = nullptr;

  std::mutex mu_;
  std::condition_variable work_cv_;   // workers wait here for a request
  std::condition_variable state_cv_;  // the dispatcher and the progress line wait here
  std::deque<size_t> queue_;          // requests due and not yet taken by a worker
  std::vector<std::thread> workers_;
  int64_t n_idle_ = 0;  // workers waiting for a request
  int64_t n_in_flight_ = 0;
  int64_t n_done_ = 0;
  int64_t max_in_flight_ = 0;
  bool closing_ = false;
};

}  // namespace

std::vector<double> arrival_offsets(int64_t n, double rate, uint64_t seed) {
  MSI_CHECK(rate > 0.0, "request rate must be > 0, got {}", rate);
  std::vector<double> out(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(rate)) return out;
  BenchRng rng(seed);
  double t = 0.0;
  for (double& a : out) {
    // Inverse CDF of Exp(rate); log1p(-u) is finite because u < 1.
    t += -std::log1p(-rng.uniform()) / rate;
    a = t;
  }
  return out;
}

Result<ServeBenchResult> run_serve_bench(const ServeBenchConfig& config) {
  MSI_RETURN_IF_ERROR(validate(config));
  const HttpTarget target{config.host, config.port, config.timeout_s};
  const bool chat = config.endpoint == kChatCompletions;

  ServeBenchResult result;
  result.config = config;
  ServerClient client(target);
  MSI_ASSIGN_OR_RETURN(std::vector<std::string> models, client.list_models());
  if (config.model.empty()) {
    if (models.empty()) {
      return error(StatusCode::kNotFound, "GET /v1/models lists no model; pass --model");
    }
    result.model = models.front();
  } else {
    result.model = config.model;
  }

  const CountTokensFn count_tokens = [&](const std::string& text) {
    return client.count_tokens(result.model, text);
  };
  if (config.dataset_name == "random") {
    RandomDatasetConfig rc;
    rc.n_prompts = config.n_prompts;
    rc.input_len = config.random_input_len;
    rc.output_len = config.random_output_len;
    rc.range_ratio = config.random_range_ratio;
    rc.vocab_size = config.random_vocab_size;
    rc.text = chat;
    rc.seed = config.seed;
    MSI_ASSIGN_OR_RETURN(result.requests, sample_random_requests(rc, count_tokens));
  } else {
    MSI_ASSIGN_OR_RETURN(
        result.requests,
        load_sharegpt_requests(config.dataset_path, config.n_prompts, config.seed, count_tokens));
  }

  // Serialized up front so that the timed path only sends bytes.
  std::vector<std::string> bodies;
  bodies.reserve(result.requests.size());
  for (const BenchRequest& r : result.requests) {
    bodies.push_back(make_request_body(r, result.model, chat, config.ignore_eos).dump());
  }
  result.arrival_s = arrival_offsets(static_cast<int64_t>(result.requests.size()),
                                     config.request_rate, config.seed);

  RequestRunner runner(config, result.requests, bodies, result.arrival_s);
  const double duration_s = runner.run(result.outputs, result.max_in_flight);
  result.metrics = compute_metrics(result.outputs, std::max(duration_s, 1e-9));
  return result;
}

nlohmann::json ServeBenchResult::to_json() const {
  nlohmann::json j;
  j["date"] = local_date();
  j["endpoint"] = config.endpoint;
  j["model_id"] = model;
  j["dataset_name"] = config.dataset_name;
  j["num_prompts"] = static_cast<int64_t>(outputs.size());
  j["request_rate"] =
      std::isinf(config.request_rate) ? nlohmann::json("inf") : nlohmann::json(config.request_rate);
  j["max_concurrency"] =
      config.max_concurrency > 0 ? nlohmann::json(config.max_concurrency) : nlohmann::json(nullptr);
  j["seed"] = config.seed;
  j.update(metrics_json(metrics));
  nlohmann::json input_lens = nlohmann::json::array();
  nlohmann::json output_lens = nlohmann::json::array();
  nlohmann::json ttfts = nlohmann::json::array();
  nlohmann::json itls = nlohmann::json::array();
  nlohmann::json errors = nlohmann::json::array();
  for (const RequestOutput& o : outputs) {
    input_lens.push_back(o.prompt_len);
    output_lens.push_back(o.success ? o.n_output_tokens : 0);
    ttfts.push_back(o.success ? o.ttft_s : 0.0);
    itls.push_back(o.itl_s);
    errors.push_back(o.error);
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["ttfts"] = std::move(ttfts);
  j["itls"] = std::move(itls);
  j["errors"] = std::move(errors);
  return j;
}

std::string ServeBenchResult::to_table() const {
  std::vector<std::string> header = {
      fmt::format("Model: {}  Endpoint: {}  Dataset: {}", model, config.endpoint,
                  config.dataset_name),
      fmt::format("Request rate: {}  Max concurrency: {}  Peak in flight: {}",
                  rate_text(config.request_rate),
                  config.max_concurrency > 0 ? fmt::format("{}", config.max_concurrency)
                                             : std::string("unlimited"),
                  max_in_flight),
  };
  return format_table(metrics, header);
}

}  // namespace msi::bench

#include "sched/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"

namespace msi {

struct Scheduler::Seq {
  SchedRequest request;
  std::vector<int32_t> tokens;  // prompt ++ outputs
  int64_t n_prompt = 0;
  int64_t n_computed = 0;       // tokens in the KV cache
  bool running = false;
  std::unique_ptr<Sampler> sampler;
  int64_t n_outputs() const { return static_cast<int64_t>(tokens.size()) - n_prompt; }
};

Scheduler::Scheduler(const SchedulerConfig& config, KvSpace& kv) : config_(config), kv_(kv) {
  running_.reserve(static_cast<size_t>(config.max_seqs));
  step_seqs_.reserve(static_cast<size_t>(config.max_seqs));
  step_n_.reserve(static_cast<size_t>(config.max_seqs));
  step_want_logits_.reserve(static_cast<size_t>(config.max_seqs));
  masked_.resize(static_cast<size_t>(config.vocab_size));
}

Scheduler::~Scheduler() {
  for (Seq* s : running_) kv_.free_sequence(s->request.id);
}

Status Scheduler::add(SchedRequest request) {
  if (request.prompt.empty()) return error(StatusCode::kInvalidArgument, "request {}: empty prompt", request.id);
  if (seqs_.count(request.id)) return error(StatusCode::kInvalidArgument, "request {} already exists", request.id);
  auto seq = std::make_unique<Seq>();
  seq->tokens = request.prompt;
  seq->n_prompt = static_cast<int64_t>(request.prompt.size());
  seq->sampler = std::make_unique<Sampler>(request.sampling, request.fallback_seed);
  seq->request = std::move(request);
  waiting_.push_back(seq.get());
  seqs_.emplace(seq->request.id, std::move(seq));
  return Status::ok();
}

bool Scheduler::abort(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  Seq* s = it->second.get();
  if (s->running) {
    kv_.free_sequence(id);
    running_.erase(std::find(running_.begin(), running_.end(), s));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), s));
  }
  // A step in flight keeps pointers: drop this sequence from it.
  for (size_t i = 0; i < step_seqs_.size(); ++i) {
    if (step_seqs_[i] == s) step_seqs_[i] = nullptr;
  }
  seqs_.erase(it);
  return true;
}

void Scheduler::preempt(Seq* seq) {
  kv_.free_sequence(seq->request.id);
  seq->n_computed = 0;  // recompute prompt and outputs when it runs again
  seq->running = false;
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  waiting_.push_front(seq);
  ++n_preemptions_;
}

Result<std::vector<ScheduledChunk>> Scheduler::schedule() {
  std::vector<ScheduledChunk> chunks;
  step_seqs_.clear();
  step_n_.clear();
  step_want_logits_.clear();
  int64_t budget = config_.max_batched_tokens;
  auto take = [&](Seq* s, int64_t n) {
    chunks.push_back({s->request.id, std::span<const int32_t>(s->tokens.data() + s->n_computed, static_cast<size_t>(n)),
                      s->n_computed + n == static_cast<int64_t>(s->tokens.size())});
    step_seqs_.push_back(s);
    step_n_.push_back(n);
    step_want_logits_.push_back(chunks.back().want_logits ? 1 : 0);
    budget -= n;
  };

  // 1. Running sequences, oldest first; preempt the newest when KV runs out.
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Seq* s = running_[i];
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(s->tokens.size()) - s->n_computed, budget);
    Status st = kv_.reserve(s->request.id, s->n_computed + n);
    while (st.code() == StatusCode::kResourceExhausted && running_.back() != s) {
      preempt(running_.back());
      preempted = true;
      st = kv_.reserve(s->request.id, s->n_computed + n);
    }
    if (st.code() == StatusCode::kResourceExhausted) {  // even alone it does not fit now
      preempt(s);
      preempted = true;
      continue;  // running_[i] is now the next one
    }
    MSI_RETURN_IF_ERROR(st);
    take(s, n);
    ++i;
  }

  // 2. Waiting sequences, first come first served, while the budget and KV allow.
  while (!preempted && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_seqs) {
    Seq* s = waiting_.front();
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(s->tokens.size()) - s->n_computed, budget);
    MSI_RETURN_IF_ERROR(kv_.add_sequence(s->request.id));
    Status st = kv_.reserve(s->request.id, s->n_computed + n);
    if (!st.is_ok()) {
      kv_.free_sequence(s->request.id);
      if (st.code() == StatusCode::kResourceExhausted && running_.empty()) {
        // Nothing runs and it still does not fit: it never will.
        return error(StatusCode::kResourceExhausted,
                     "KV cache too small: request {} needs {} tokens at once, more than the whole cache holds",
                     s->request.id, s->n_computed + n);
      }
      if (st.code() == StatusCode::kResourceExhausted) break;
      return st;
    }
    waiting_.pop_front();
    s->running = true;
    running_.push_back(s);
    take(s, n);
  }
  return chunks;
}

bool Scheduler::is_stop_token(const Seq& s, int32_t token) const {
  const auto& stops = s.request.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) return true;
  if (s.request.sampling.ignore_eos) return false;
  return std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), token) != config_.eos_token_ids.end();
}

void Scheduler::update(std::span<const float> logits, std::vector<SeqOutput>& outputs) {
  const auto vocab = static_cast<size_t>(config_.vocab_size);
  size_t row = 0;
  for (size_t c = 0; c < step_seqs_.size(); ++c) {
    Seq* s = step_seqs_[c];
    const int64_t n = step_n_[c];
    const bool want_logits = step_want_logits_[c] != 0;
    if (s == nullptr) {  // aborted during the step; its logits row (if any) is skipped
      if (want_logits) ++row;
      continue;
    }
    s->n_computed += n;
    if (!want_logits) continue;
    MSI_CHECK((row + 1) * vocab <= logits.size(), "update: {} logit rows for more chunks", logits.size() / vocab);
    const float* l = logits.data() + row++ * vocab;
    // min_tokens: EOS and stop tokens cannot be chosen yet.
    if (s->n_outputs() < s->request.min_tokens) {
      std::copy(l, l + vocab, masked_.begin());
      for (int32_t t = 0; t < static_cast<int32_t>(vocab); ++t) {
        if (is_stop_token(*s, t)) masked_[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
      }
      l = masked_.data();
    }
    const int32_t token = s->sampler->sample(l, config_.vocab_size);
    accept(c, s, token, std::span<const float>(logits.data() + (row - 1) * vocab, vocab), outputs);
  }
}

bool Scheduler::device_sampling_params(std::vector<float>& params) {
  params.clear();
  for (size_t c = 0; c < step_seqs_.size(); ++c) {
    const Seq* s = step_seqs_[c];
    if (s == nullptr || step_want_logits_[c] == 0) continue;
    const SchedRequest& r = s->request;
    if (r.return_logits || r.n_logprobs >= 0 || s->n_outputs() < r.min_tokens) return false;
  }
  for (size_t c = 0; c < step_seqs_.size(); ++c) {
    Seq* s = step_seqs_[c];
    if (step_want_logits_[c] == 0) continue;
    if (s == nullptr) {  // aborted during the step: its row is sampled greedily and dropped
      params.insert(params.end(), {0.0f, 1.0f, 0.0f, 0.0f});
      continue;
    }
    const SamplingParams& p = s->request.sampling;
    const bool greedy = p.temperature == 0.0f;
    const float u = greedy ? 0.0f : static_cast<float>(s->sampler->draw_uniform());
    params.insert(params.end(), {p.temperature, p.top_p, static_cast<float>(p.top_k), u});
  }
  return true;
}

void Scheduler::update_tokens(std::span<const int32_t> tokens, std::vector<SeqOutput>& outputs) {
  size_t row = 0;
  for (size_t c = 0; c < step_seqs_.size(); ++c) {
    Seq* s = step_seqs_[c];
    const bool want_logits = step_want_logits_[c] != 0;
    if (s == nullptr) {
      if (want_logits) ++row;
      continue;
    }
    s->n_computed += step_n_[c];
    if (!want_logits) continue;
    MSI_CHECK(row < tokens.size(), "update_tokens: {} tokens for more chunks", tokens.size());
    const int32_t token = tokens[row++];
    MSI_CHECK(token >= 0 && token < config_.vocab_size, "update_tokens: token {} outside the vocabulary", token);
    accept(c, s, token, {}, outputs);
  }
}

void Scheduler::accept(size_t c, Seq* s, int32_t token, std::span<const float> raw, std::vector<SeqOutput>& outputs) {
  MSI_CHECK(!raw.empty() || (!s->request.return_logits && s->request.n_logprobs < 0),
            "request {} needs its logits row", s->request.id);
  s->tokens.push_back(token);
  SeqOutput out;
  out.id = s->request.id;
  out.token = token;
  if (s->request.return_logits) out.logits.assign(raw.begin(), raw.end());
  if (s->request.n_logprobs >= 0) compute_logprobs(raw, token, s->request.n_logprobs, out);
  if (is_stop_token(*s, token) && s->n_outputs() >= s->request.min_tokens) {
    out.finished = true;
    out.finish_reason = "stop";
  } else if (s->n_outputs() >= s->request.sampling.max_tokens ||
             static_cast<int64_t>(s->tokens.size()) >= config_.max_model_len) {
    out.finished = true;
    out.finish_reason = "length";
  }
  if (out.finished) {
    step_seqs_[c] = nullptr;
    abort(s->request.id);
  }
  outputs.push_back(std::move(out));
}

void compute_logprobs(std::span<const float> logits, int32_t token, int64_t n_top, SeqOutput& out) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (float v : logits) max_logit = std::max(max_logit, v);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max_logit);
  const double log_z = max_logit + std::log(sum);
  out.logprob = static_cast<float>(logits[static_cast<size_t>(token)] - log_z);
  out.top_logprobs.clear();
  const auto k = static_cast<size_t>(std::min<int64_t>(n_top, static_cast<int64_t>(logits.size())));
  if (k == 0) return;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<int64_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  for (size_t i = 0; i < k; ++i) {
    out.top_logprobs.emplace_back(ids[i], static_cast<float>(logits[static_cast<size_t>(ids[i])] - log_z));
  }
}

}  // namespace msi

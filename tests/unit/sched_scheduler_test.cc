// Continuous batching: chunked prefill mixed with decodes under a token budget, admission by KV
// capacity, preemption by recompute, aborts freeing KV at once, and the stop rules.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "sched/scheduler.h"

namespace msi {
namespace {

// Counts blocks like a BlockPool: ceil(tokens / block) per sequence, out of a fixed total.
class FakeKv final : public KvSpace {
 public:
  FakeKv(int64_t n_blocks, int64_t block) : n_blocks_(n_blocks), block_(block) {}
  Status add_sequence(int64_t id) override {
    if (!blocks_.emplace(id, 0).second) return error(StatusCode::kInvalidArgument, "dup {}", id);
    return Status::ok();
  }
  Status reserve(int64_t id, int64_t n_tokens) override {
    auto it = blocks_.find(id);
    if (it == blocks_.end()) return error(StatusCode::kNotFound, "no {}", id);
    const int64_t need = (n_tokens + block_ - 1) / block_ - it->second;
    if (need <= 0) return Status::ok();
    if (used() + need > n_blocks_) return error(StatusCode::kResourceExhausted, "full");
    it->second += need;
    return Status::ok();
  }
  void free_sequence(int64_t id) override { blocks_.erase(id); }
  int64_t used() const {
    int64_t n = 0;
    for (auto& [id, b] : blocks_) n += b;
    return n;
  }

 private:
  int64_t n_blocks_, block_;
  std::map<int64_t, int64_t> blocks_;
};

constexpr int64_t kVocab = 50;

// A "model" whose next token is (last token + 1) % vocab: outputs are easy to predict and do not
// depend on how the work was batched or recomputed.
std::vector<float> fake_logits(const std::vector<ScheduledChunk>& chunks) {
  std::vector<float> rows;
  for (const auto& c : chunks) {
    if (!c.want_logits) continue;
    std::vector<float> row(kVocab, 0.0f);
    row[static_cast<size_t>((c.tokens.back() + 1) % kVocab)] = 5.0f;
    rows.insert(rows.end(), row.begin(), row.end());
  }
  return rows;
}

SchedulerConfig config(int64_t budget = 64, int64_t max_seqs = 8) {
  SchedulerConfig c;
  c.max_batched_tokens = budget;
  c.max_seqs = max_seqs;
  c.max_model_len = 1000;
  c.vocab_size = kVocab;
  c.eos_token_ids = {0};
  return c;
}

SchedRequest request(int64_t id, int64_t prompt_len, int64_t max_tokens, int32_t first = 1) {
  SchedRequest r;
  r.id = id;
  for (int64_t i = 0; i < prompt_len; ++i) r.prompt.push_back(static_cast<int32_t>((first + i) % 40 + 1));
  r.sampling.max_tokens = max_tokens;
  return r;
}

// Runs the scheduler to completion; returns each request's tokens and finish reason.
std::map<int64_t, std::pair<std::vector<int32_t>, std::string>> run_all(Scheduler& s, int* steps = nullptr) {
  std::map<int64_t, std::pair<std::vector<int32_t>, std::string>> out;
  int n = 0;
  while (s.has_work()) {
    auto chunks = s.schedule();
    EXPECT_TRUE(chunks.is_ok()) << chunks.status().to_string();
    if (!chunks.is_ok()) break;
    std::vector<SeqOutput> outputs;
    s.update(fake_logits(*chunks), outputs);
    for (auto& o : outputs) {
      if (o.token >= 0) out[o.id].first.push_back(o.token);
      if (o.finished) out[o.id].second = o.finish_reason;
    }
    if (++n > 10000) break;
  }
  if (steps) *steps = n;
  return out;
}

TEST(Scheduler, PrefillThenDecodesUntilMaxTokens) {
  FakeKv kv(100, 4);
  Scheduler s(config(), kv);
  ASSERT_TRUE(s.add(request(7, 5, 3, 10)).is_ok());
  auto chunks = s.schedule();
  ASSERT_TRUE(chunks.is_ok());
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].tokens.size(), 5u);
  EXPECT_TRUE((*chunks)[0].want_logits);
  std::vector<SeqOutput> out;
  s.update(fake_logits(*chunks), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].token, 16);  // last prompt token 15, + 1
  auto all = run_all(s);
  EXPECT_EQ(all[7].first, (std::vector<int32_t>{17, 18}));
  EXPECT_EQ(all[7].second, "length");
  EXPECT_EQ(kv.used(), 0);
}

TEST(Scheduler, ChunkedPrefillMixesWithDecodesUnderTheBudget) {
  FakeKv kv(1000, 4);
  Scheduler s(config(/*budget=*/10), kv);
  ASSERT_TRUE(s.add(request(1, 3, 20)).is_ok());
  ASSERT_TRUE(s.add(request(2, 25, 2)).is_ok());
  auto c1 = s.schedule();  // 3 tokens of #1, 7 of #2
  ASSERT_TRUE(c1.is_ok());
  ASSERT_EQ(c1->size(), 2u);
  EXPECT_EQ((*c1)[0].tokens.size(), 3u);
  EXPECT_EQ((*c1)[1].tokens.size(), 7u);
  EXPECT_FALSE((*c1)[1].want_logits);
  std::vector<SeqOutput> out;
  s.update(fake_logits(*c1), out);
  auto c2 = s.schedule();  // a decode of #1 and 9 more prompt tokens of #2
  ASSERT_TRUE(c2.is_ok());
  EXPECT_EQ((*c2)[0].tokens.size(), 1u);
  EXPECT_EQ((*c2)[1].tokens.size(), 9u);
  int64_t total = 0;
  for (auto& c : *c2) total += static_cast<int64_t>(c.tokens.size());
  EXPECT_LE(total, 10);
  s.update(fake_logits(*c2), out);
  auto all = run_all(s);
  EXPECT_EQ(all[2].second, "length");
  EXPECT_EQ(kv.used(), 0);
}

TEST(Scheduler, MaxSeqsLimitsAdmission) {
  FakeKv kv(1000, 4);
  Scheduler s(config(64, /*max_seqs=*/2), kv);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.add(request(i, 2, 3)).is_ok());
  auto c = s.schedule();
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->size(), 2u);
  EXPECT_EQ(s.n_waiting(), 3);
  std::vector<SeqOutput> out;
  s.update(fake_logits(*c), out);
  auto all = run_all(s);
  EXPECT_EQ(all.size(), 5u);
}

TEST(Scheduler, PreemptsByRecomputeAndGivesTheSameOutputs) {
  // Ample KV: the reference outputs.
  FakeKv big(1000, 4);
  Scheduler ref(config(), big);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ref.add(request(i, 6, 12, i * 3)).is_ok());
  const auto expected = run_all(ref);
  // Tight KV: 4 sequences of up to 18 tokens (5 blocks each) in 12 blocks.
  FakeKv small(12, 4);
  Scheduler s(config(), small);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.add(request(i, 6, 12, i * 3)).is_ok());
  const auto got = run_all(s);
  EXPECT_GT(s.n_preemptions(), 0);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(small.used(), 0);
}

TEST(Scheduler, AbortFreesKvAtOnceEvenMidStep) {
  FakeKv kv(100, 4);
  Scheduler s(config(), kv);
  ASSERT_TRUE(s.add(request(1, 9, 50)).is_ok());
  ASSERT_TRUE(s.add(request(2, 9, 50)).is_ok());
  auto c = s.schedule();
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(kv.used(), 6);
  EXPECT_TRUE(s.abort(1));  // while the step is "running"
  EXPECT_EQ(kv.used(), 3);
  std::vector<SeqOutput> out;
  s.update(fake_logits(*c), out);  // the aborted row is skipped
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 2);
  EXPECT_FALSE(s.abort(1));
  EXPECT_TRUE(s.add(request(3, 2, 5)).is_ok());
  EXPECT_TRUE(s.abort(3));  // a waiting one
  EXPECT_TRUE(s.abort(2));
  EXPECT_EQ(kv.used(), 0);
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, StopRules) {
  FakeKv kv(100, 4);
  {
    Scheduler s(config(), kv);
    auto r = request(1, 1, 100);
    r.prompt = {47};  // next tokens 48, 49, 0 (EOS)
    ASSERT_TRUE(s.add(r).is_ok());
    auto all = run_all(s);
    EXPECT_EQ(all[1].first, (std::vector<int32_t>{48, 49, 0}));
    EXPECT_EQ(all[1].second, "stop");
  }
  {
    Scheduler s(config(), kv);
    auto r = request(1, 1, 5);
    r.prompt = {47};
    r.sampling.ignore_eos = true;
    ASSERT_TRUE(s.add(r).is_ok());
    auto all = run_all(s);
    EXPECT_EQ(all[1].first, (std::vector<int32_t>{48, 49, 0, 1, 2}));
    EXPECT_EQ(all[1].second, "length");
  }
  {
    Scheduler s(config(), kv);
    auto r = request(1, 1, 100);
    r.prompt = {10};
    r.stop_token_ids = {13};
    ASSERT_TRUE(s.add(r).is_ok());
    auto all = run_all(s);
    EXPECT_EQ(all[1].first, (std::vector<int32_t>{11, 12, 13}));
    EXPECT_EQ(all[1].second, "stop");
  }
  {
    // min_tokens masks the stop token: 13 cannot be chosen before 5 outputs.
    Scheduler s(config(), kv);
    auto r = request(1, 1, 100);
    r.prompt = {10};
    r.stop_token_ids = {11};
    r.min_tokens = 2;
    ASSERT_TRUE(s.add(r).is_ok());
    auto all = run_all(s);
    EXPECT_NE(all[1].first[0], 11);
  }
  {
    SchedulerConfig c = config();
    c.max_model_len = 8;
    Scheduler s(c, kv);
    ASSERT_TRUE(s.add(request(1, 5, 100)).is_ok());
    auto all = run_all(s);
    EXPECT_EQ(all[1].first.size(), 3u);
    EXPECT_EQ(all[1].second, "length");
  }
  EXPECT_EQ(kv.used(), 0);
}

TEST(Scheduler, ErrorsAndRequestsThatCanNeverFit) {
  FakeKv kv(2, 4);
  Scheduler s(config(), kv);
  EXPECT_EQ(s.add(SchedRequest{}).code(), StatusCode::kInvalidArgument);  // empty prompt
  ASSERT_TRUE(s.add(request(1, 20, 4)).is_ok());
  EXPECT_EQ(s.add(request(1, 2, 4)).code(), StatusCode::kInvalidArgument);  // duplicate id
  auto c = s.schedule();
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("KV cache too small"), std::string::npos);
}

}  // namespace
}  // namespace msi

namespace msi {
namespace {

TEST(Scheduler, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  SeqOutput out;
  compute_logprobs(logits, 2, 3, out);
  double z = 0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  EXPECT_NEAR(out.logprob, 2.0 - std::log(z), 1e-6);
  ASSERT_EQ(out.top_logprobs.size(), 3u);
  EXPECT_EQ(out.top_logprobs[0].first, 1);  // ties: lower id first
  EXPECT_EQ(out.top_logprobs[1].first, 3);
  EXPECT_EQ(out.top_logprobs[2].first, 2);
  EXPECT_NEAR(out.top_logprobs[0].second, 3.0 - std::log(z), 1e-6);
  compute_logprobs(logits, 0, 0, out);
  EXPECT_TRUE(out.top_logprobs.empty());
}

// Device-side sampling: allowed only when no request of the step needs its logits row, and
// update_tokens() with the same tokens gives the same outputs as update() with the logits.
TEST(Scheduler, DeviceSampledStepsTakeDeviceTokens) {
  FakeKv kv_a(100, 4), kv_b(100, 4);
  Scheduler a(config(), kv_a), b(config(), kv_b);
  for (Scheduler* s : {&a, &b}) {
    ASSERT_TRUE(s->add(request(1, 5, 6)).is_ok());
    ASSERT_TRUE(s->add(request(2, 3, 4, 7)).is_ok());
  }
  std::vector<SeqOutput> out_a, out_b;
  while (a.has_work()) {
    auto ca = a.schedule();
    auto cb = b.schedule();
    ASSERT_TRUE(ca.is_ok() && cb.is_ok());
    std::vector<float> params;
    EXPECT_TRUE(b.device_sampling_params(params));
    size_t wanted = 0;
    for (const auto& c : *cb) wanted += c.want_logits ? 1 : 0;
    ASSERT_EQ(params.size(), 4 * wanted);
    for (size_t r = 0; r < wanted; ++r) EXPECT_EQ(params[4 * r], 0.0f);  // greedy rows
    const std::vector<float> logits = fake_logits(*ca);
    std::vector<int32_t> tokens;
    for (const auto& c : *cb) {
      if (c.want_logits) tokens.push_back((c.tokens.back() + 1) % kVocab);
    }
    a.update(logits, out_a);
    b.update_tokens(tokens, out_b);
  }
  EXPECT_FALSE(b.has_work());
  ASSERT_EQ(out_a.size(), out_b.size());
  for (size_t i = 0; i < out_a.size(); ++i) {
    EXPECT_EQ(out_a[i].id, out_b[i].id);
    EXPECT_EQ(out_a[i].token, out_b[i].token);
    EXPECT_EQ(out_a[i].finished, out_b[i].finished);
    EXPECT_EQ(out_a[i].finish_reason, out_b[i].finish_reason);
  }

  // Any request that needs its row (logits, logprobs, min_tokens masking) rules it out.
  for (int variant = 0; variant < 3; ++variant) {
    FakeKv kv(100, 4);
    Scheduler s(config(), kv);
    SchedRequest r = request(1, 3, 5);
    if (variant == 0) r.return_logits = true;
    if (variant == 1) r.n_logprobs = 0;
    if (variant == 2) r.min_tokens = 2;
    ASSERT_TRUE(s.add(request(2, 3, 5)).is_ok());
    ASSERT_TRUE(s.add(std::move(r)).is_ok());
    ASSERT_TRUE(s.schedule().is_ok());
    std::vector<float> params;
    EXPECT_FALSE(s.device_sampling_params(params)) << "variant " << variant;
  }
}

// A sampled request's row carries its parameters and the next uniform of its own generator (the
// draw the host sampler would have made), so its seed still decides its tokens.
TEST(Scheduler, DeviceSamplingParamsDrawFromTheRequestsGenerator) {
  FakeKv kv(100, 4);
  Scheduler s(config(), kv);
  SchedRequest r = request(1, 3, 5);
  r.sampling.temperature = 0.7f;
  r.sampling.top_p = 0.9f;
  r.sampling.top_k = 20;
  r.sampling.seed = 1234;
  r.sampling.has_seed = true;
  ASSERT_TRUE(s.add(std::move(r)).is_ok());
  ASSERT_TRUE(s.schedule().is_ok());
  std::vector<float> params;
  ASSERT_TRUE(s.device_sampling_params(params));
  ASSERT_EQ(params.size(), 4u);
  SamplingParams sp;
  sp.seed = 1234;
  sp.has_seed = true;
  sp.temperature = 0.7f;
  Sampler twin(sp, 0);
  EXPECT_EQ(params[0], 0.7f);
  EXPECT_EQ(params[1], 0.9f);
  EXPECT_EQ(params[2], 20.0f);
  EXPECT_EQ(params[3], static_cast<float>(twin.draw_uniform()));
}

}  // namespace
}  // namespace msi

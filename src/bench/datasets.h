// Benchmark datasets for `msinfer bench serve`: the random dataset (vLLM's "random") and ShareGPT
// conversations, turned into BenchRequests (a prompt, its length and the output length to ask
// for). Sampling is seeded and reproducible across platforms: it uses std::mt19937_64, whose
// output the standard fixes, and its own mapping to ranges (never std::*_distribution, whose
// results differ between standard libraries).
//
// Owns nothing but values; thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"

namespace msi::bench {

struct BenchRequest {
  // Exactly one of the two prompts is set: token ids (random dataset on /v1/completions, which
  // accepts token-id prompts) or text (ShareGPT, and the random dataset on chat completions).
  std::vector<int32_t> prompt_ids;
  std::string prompt_text;
  int64_t prompt_len = 0;  // tokens
  int64_t output_len = 0;  // max_tokens to ask for
};

// Counts the tokens of a text with the server's tokenizer (POST /tokenize).
using CountTokensFn = std::function<Result<int64_t>(const std::string& text)>;

struct RandomDatasetConfig {
  int64_t n_prompts = 1000;
  int64_t input_len = 1024;
  int64_t output_len = 128;
  // Lengths are drawn uniformly from [len * (1 - r), len * (1 + r)] (at least 1); 0 gives exactly
  // `len`. Requires 0 <= r < 1.
  double range_ratio = 0.0;
  // Token ids are drawn uniformly from [0, vocab_size). The client has no tokenizer, so this
  // must not exceed the served model's vocabulary; the default fits every model msinfer serves.
  int64_t vocab_size = 2000;
  // Text prompts (for chat): input_len words drawn from a list of common English words, each
  // one token in typical BPE vocabularies (a detokenized random-id prompt is not available
  // without the tokenizer). prompt_len is then measured with count_tokens when given, else it
  // is the number of words.
  bool text = false;
  uint64_t seed = 0;
};

// Requires a valid config (InvalidArgument otherwise). Calls count_tokens once per text prompt.
Result<std::vector<BenchRequest>> sample_random_requests(const RandomDatasetConfig& config,
                                                         const CountTokensFn& count_tokens);

// ShareGPT: a JSON list of {"conversations": [{"from": "human", "value": ...}, {"from": "gpt",
// "value": ...}, ...]}. Conversations are shuffled with `seed`; for each, the prompt is the first
// "human" turn and the output length is the token count of the "gpt" turn right after it (both
// counted with count_tokens). Conversations with fewer than 2 turns, without such a pair, or
// whose reply has no tokens are skipped. Stops after n_prompts requests; when the file yields
// fewer, repeats them in order up to n_prompts (vLLM oversamples likewise) and logs a warning.
// Fails when the file is unreadable, not ShareGPT, or yields no request.
Result<std::vector<BenchRequest>> load_sharegpt_requests(const std::string& path, int64_t n_prompts,
                                                         uint64_t seed,
                                                         const CountTokensFn& count_tokens);

// Seeded randomness shared by the datasets and the arrival process.
class BenchRng {
 public:
  explicit BenchRng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, n); requires n > 0.
  uint64_t below(uint64_t n);
  // Uniform in [0, 1), 53 random bits.
  double uniform();

 private:
  std::mt19937_64 engine_;
};

}  // namespace msi::bench

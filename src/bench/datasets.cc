#include "bench/datasets.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/logging.h"

namespace msi::bench {
namespace {

// Common short English words; with a leading space each is a single token in the BPE
// vocabularies of the models msinfer serves (Mixtral, Qwen), so n words are about n tokens.
constexpr const char* kWords[] = {
    "the",  "of",    "and",   "to",   "in",   "is",    "it",    "you",   "that", "he",    "was",
    "for",  "on",    "are",   "as",   "with", "his",   "they",  "at",    "be",   "this",  "have",
    "from", "or",    "one",   "had",  "by",   "word",  "but",   "not",   "what", "all",   "were",
    "we",   "when",  "your",  "can",  "said", "there", "use",   "an",    "each", "which", "she",
    "do",   "how",   "their", "if",   "will", "up",    "other", "about", "out",  "many",  "then",
    "them", "these", "so",    "some", "her",  "would", "make",  "like",  "him",  "into",  "time",
};
constexpr uint64_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

// A length drawn uniformly from [len * (1 - r), len * (1 + r)], at least 1.
int64_t draw_len(BenchRng& rng, int64_t len, double r) {
  const auto lo = std::max<int64_t>(1, static_cast<int64_t>(std::floor(len * (1.0 - r))));
  const auto hi = std::max<int64_t>(lo, static_cast<int64_t>(std::ceil(len * (1.0 + r))));
  if (r == 0.0) return std::max<int64_t>(1, len);
  return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
}

Result<nlohmann::json> read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(StatusCode::kNotFound, "cannot open dataset file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return error(StatusCode::kInvalidArgument, "{} is not valid JSON", path);
  return j;
}

// The text of `turn` when it is from `who`; nullptr otherwise.
const std::string* turn_text(const nlohmann::json& turn, const char* who) {
  if (!turn.is_object()) return nullptr;
  auto from = turn.find("from");
  auto value = turn.find("value");
  if (from == turn.end() || value == turn.end() || !from->is_string() || !value->is_string()) {
    return nullptr;
  }
  if (from->get_ref<const std::string&>() != who) return nullptr;
  return &value->get_ref<const std::string&>();
}

}  // namespace

uint64_t BenchRng::below(uint64_t n) {
  // Multiply-shift: maps 64 random bits onto [0, n) with a bias below 2^-64 * n.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(engine_()) * n) >> 64);
}

double BenchRng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

Result<std::vector<BenchRequest>> sample_random_requests(const RandomDatasetConfig& c,
                                                         const CountTokensFn& count_tokens) {
  if (c.n_prompts < 1) return error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (c.input_len < 1 || c.output_len < 1) {
    return error(StatusCode::kInvalidArgument,
                 "--random-input-len and --random-output-len must "
                 "be >= 1");
  }
  if (!(c.range_ratio >= 0.0 && c.range_ratio < 1.0)) {
    return error(StatusCode::kInvalidArgument, "--random-range-ratio must be in [0, 1), got {}",
                 c.range_ratio);
  }
  if (c.vocab_size < 1)
    return error(StatusCode::kInvalidArgument, "--random-vocab-size must be >= 1");
  BenchRng rng(c.seed);
  std::vector<BenchRequest> out(static_cast<size_t>(c.n_prompts));
  for (BenchRequest& r : out) {
    const int64_t n_in = draw_len(rng, c.input_len, c.range_ratio);
    r.output_len = draw_len(rng, c.output_len, c.range_ratio);
    if (c.text) {
      for (int64_t i = 0; i < n_in; ++i) {
        if (i > 0) r.prompt_text += ' ';
        r.prompt_text += kWords[rng.below(kNumWords)];
      }
      r.prompt_len = n_in;
    } else {
      r.prompt_ids.resize(static_cast<size_t>(n_in));
      for (int32_t& id : r.prompt_ids) {
        id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
      }
      r.prompt_len = n_in;
    }
  }
  // Measured after sampling so that the token counts do not perturb the random stream.
  if (c.text && count_tokens) {
    for (BenchRequest& r : out) {
      MSI_ASSIGN_OR_RETURN(r.prompt_len, count_tokens(r.prompt_text));
    }
  }
  return out;
}

Result<std::vector<BenchRequest>> load_sharegpt_requests(const std::string& path, int64_t n_prompts,
                                                         uint64_t seed,
                                                         const CountTokensFn& count_tokens) {
  if (n_prompts < 1) return error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  MSI_ASSIGN_OR_RETURN(nlohmann::json data, read_json_file(path));
  if (!data.is_array()) {
    return error(StatusCode::kInvalidArgument, "{}: a ShareGPT file is a JSON list", path);
  }
  // Fisher-Yates with BenchRng, so the order is the same on every platform.
  std::vector<size_t> order(data.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  BenchRng rng(seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);

  std::vector<BenchRequest> out;
  for (size_t idx : order) {
    if (static_cast<int64_t>(out.size()) == n_prompts) break;
    const nlohmann::json& entry = data[idx];
    if (!entry.is_object()) continue;
    auto conv = entry.find("conversations");
    if (conv == entry.end() || !conv->is_array() || conv->size() < 2) continue;
    const std::string* prompt = nullptr;
    const std::string* reply = nullptr;
    for (size_t t = 0; t + 1 < conv->size() && prompt == nullptr; ++t) {
      prompt = turn_text((*conv)[t], "human");
      if (prompt != nullptr) reply = turn_text((*conv)[t + 1], "gpt");
    }
    if (prompt == nullptr || reply == nullptr) continue;
    BenchRequest r;
    r.prompt_text = *prompt;
    MSI_ASSIGN_OR_RETURN(r.output_len, count_tokens(*reply));
    if (r.output_len < 1) continue;
    MSI_ASSIGN_OR_RETURN(r.prompt_len, count_tokens(*prompt));
    out.push_back(std::move(r));
  }
  if (out.empty()) {
    return error(StatusCode::kInvalidArgument,
                 "{}: no usable conversation (a human turn followed by a gpt turn)", path);
  }
  const size_t n_unique = out.size();
  if (static_cast<int64_t>(n_unique) < n_prompts) {
    MSI_LOG_WARN("{} has {} usable conversations; repeating them to make {} requests", path,
                 n_unique, n_prompts);
    for (size_t i = 0; static_cast<int64_t>(out.size()) < n_prompts; ++i) {
      out.push_back(out[i % n_unique]);
    }
  }
  return out;
}

}  // namespace msi::bench

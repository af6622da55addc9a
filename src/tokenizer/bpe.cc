#include "tokenizer/bpe.h"

#include <algorithm>
#include <queue>

#include <fmt/format.h>

#include "tokenizer/utf8.h"

namespace msi::tok {

namespace {

Result<std::pair<std::string, std::string>> parse_merge(const nlohmann::json& m, size_t rank) {
  if (m.is_string()) {  // "a b" (older files)
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos) {
      return error(StatusCode::kInvalidArgument, "BPE merge {} '{}' is not \"a b\"", rank, s);
    }
    return std::make_pair(s.substr(0, space), s.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return error(StatusCode::kInvalidArgument, "BPE merge {} is neither \"a b\" nor [a, b]: {}", rank,
               m.dump());
}

std::string optional_string(const nlohmann::json& model, const char* key) {
  auto it = model.find(key);
  return it != model.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::from_json(const nlohmann::json& model) {
  auto m = std::make_unique<BpeModel>();
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return error(StatusCode::kInvalidArgument, "BPE model: \"vocab\" must be an object");
  }
  if (model.contains("dropout") && model["dropout"].is_number() &&
      model["dropout"].get<double>() > 0.0) {
    return error(StatusCode::kUnimplemented, "BPE model: dropout is not supported");
  }
  const auto& vocab = model["vocab"];
  m->vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX - 1) {
      return error(StatusCode::kInvalidArgument, "BPE model: bad id for token '{}'", it.key());
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    m->vocab_.emplace(it.key(), id);
    max_id = std::max<int64_t>(max_id, id);
  }
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m->has_token_.assign(static_cast<size_t>(max_id + 1), 0);
  for (const auto& [token, id] : m->vocab_) {
    m->id_to_token_[id] = token;
    m->has_token_[id] = 1;
  }

  m->continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix");
  m->end_of_word_suffix_ = optional_string(model, "end_of_word_suffix");
  m->fuse_unk_ = model.value("fuse_unk", false);
  m->byte_fallback_ = model.value("byte_fallback", false);
  m->ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk = model["unk_token"].get<std::string>();
    auto id = m->token_to_id(unk);
    if (!id)
      return error(StatusCode::kInvalidArgument, "BPE model: unk_token '{}' not in vocab", unk);
    m->unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    m->byte_ids_[b] = m->token_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
  }

  if (!model.contains("merges") || !model["merges"].is_array()) {
    return error(StatusCode::kInvalidArgument, "BPE model: \"merges\" must be a list");
  }
  const auto& merges = model["merges"];
  m->merges_.reserve(merges.size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    MSI_ASSIGN_OR_RETURN(auto pair, parse_merge(merges[rank], rank));
    const auto a = m->token_to_id(pair.first);
    const auto b = m->token_to_id(pair.second);
    if (!a || !b) {
      return error(StatusCode::kInvalidArgument, "BPE merge {} '{} {}': '{}' is not in the vocab",
                   rank, pair.first, pair.second, !a ? pair.first : pair.second);
    }
    const std::string_view b_rest =
        std::string_view(pair.second).substr(std::min(prefix_len, pair.second.size()));
    const std::string merged = pair.first + std::string(b_rest);
    const auto id = m->token_to_id(merged);
    if (!id) {
      return error(StatusCode::kInvalidArgument, "BPE merge {}: '{}' is not in the vocab", rank,
                   merged);
    }
    // A repeated pair keeps its last rank, as in `tokenizers`.
    m->merges_[pair_key(*a, *b)] = Merge{static_cast<int32_t>(rank), *id};
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_end() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (cache_.lookup(word, ids)) return;
  const size_t start = ids->size();
  merge_word(word, ids);
  cache_.insert(word, ids->data() + start, ids->size() - start);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool last_was_unk = false;
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, true});
    if (n > 0) symbols[n - 1].next = n;
  };
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    pos += utf8_len(static_cast<uint8_t>(word[pos]));
    pos = std::min(pos, word.size());
    std::string_view ch = word.substr(begin, pos - begin);
    std::optional<int32_t> id;
    if ((begin == 0 || continuing_subword_prefix_.empty()) &&
        (pos < word.size() || end_of_word_suffix_.empty())) {
      id = token_to_id(ch);
    } else {
      piece.clear();
      if (begin > 0) piece += continuing_subword_prefix_;
      piece += ch;
      if (pos == word.size()) piece += end_of_word_suffix_;
      id = token_to_id(piece);
    }
    if (id) {
      push(*id);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : ch) push(byte_ids_[static_cast<uint8_t>(c)]);
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_) {  // without an unk token the character is dropped, as in `tokenizers`
      if (!(fuse_unk_ && last_was_unk)) push(*unk_id_);
      last_was_unk = true;
    }
  }

  // Min-heap of candidate merges by (rank, position of the left symbol).
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) heap.push(Candidate{it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = symbols[c.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Stale if either side changed since the candidate was pushed.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.rank != c.rank || it->second.new_id != c.new_id) {
      continue;
    }
    left.id = c.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids->push_back(symbols[i].id);
  }
}

}  // namespace msi::tok

#include "tokenizer/added_vocabulary.h"

#include <utf8proc.h>

#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"

namespace msi::tok {

namespace {

// A "word" character for single_word (Unicode \w: letters, marks, digits, connectors).
bool is_word_char(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) || c == UTF8PROC_CATEGORY_NL ||
         c == UTF8PROC_CATEGORY_PC;
}

// Start of the character that ends at `end` (end > 0).
size_t char_before(std::string_view s, size_t end) {
  size_t p = end - 1;
  while (p > 0 && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
  return p;
}

}  // namespace

void AddedVocabulary::Trie::add(std::string_view s, int32_t token_index) {
  if (terminal.empty()) terminal.push_back(-1);  // the root
  int32_t node = 0;
  for (char c : s) {
    const auto b = static_cast<uint8_t>(c);
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    auto it = edges.find(key);
    if (it == edges.end()) {
      const auto child = static_cast<int32_t>(terminal.size());
      terminal.push_back(-1);
      it = edges.emplace(key, child).first;
    }
    node = it->second;
  }
  first_byte[static_cast<uint8_t>(s[0])] = true;
  if (terminal[node] < 0) terminal[node] = token_index;  // the first of equal contents wins
}

Result<AddedVocabulary> AddedVocabulary::from_json(const nlohmann::json& j,
                                                   const Normalizer* normalizer) {
  AddedVocabulary v;
  if (j.is_null()) return v;
  if (!j.is_array()) return error(StatusCode::kInvalidArgument, "\"added_tokens\" must be a list");
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() ||
        !e.contains("content") || !e["content"].is_string() || e["id"].get<int64_t>() < 0 ||
        e["id"].get<int64_t>() > INT32_MAX - 1) {
      return error(StatusCode::kInvalidArgument, "malformed added token {}", e.dump());
    }
    AddedToken t;
    t.content = e["content"].get<std::string>();
    t.id = static_cast<int32_t>(e["id"].get<int64_t>());
    t.single_word = e.value("single_word", false);
    t.lstrip = e.value("lstrip", false);
    t.rstrip = e.value("rstrip", false);
    t.special = e.value("special", false);
    t.normalized = e.value("normalized", !t.special);
    if (!is_valid_utf8(t.content)) {
      return error(StatusCode::kInvalidArgument, "added token {} is not valid UTF-8", t.id);
    }
    v.tokens_.push_back(std::move(t));
  }
  for (size_t i = 0; i < v.tokens_.size(); ++i) {
    const AddedToken& t = v.tokens_[i];
    v.by_id_[t.id] = i;  // a later entry for the same id replaces an earlier one
    v.by_content_.emplace(t.content, i);
    if (t.content.empty()) continue;
    if (t.normalized && normalizer != nullptr) {
      std::string normalized;
      MSI_RETURN_IF_ERROR(normalizer->normalize(t.content, &normalized));
      if (!normalized.empty()) v.normalized_.add(normalized, static_cast<int32_t>(i));
    } else if (t.normalized) {
      v.normalized_.add(t.content, static_cast<int32_t>(i));
    } else {
      v.raw_.add(t.content, static_cast<int32_t>(i));
    }
  }
  return v;
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(std::string_view text, bool normalized_text,
                            std::vector<AddedSplit>* out) const {
  split_with(normalized_text ? normalized_ : raw_, text, out);
}

void AddedVocabulary::split_with(const Trie& trie, std::string_view text,
                                 std::vector<AddedSplit>* out) const {
  size_t plain_begin = 0;  // start of the text not yet emitted
  if (!trie.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      // Longest match starting at pos.
      int32_t best = -1;
      size_t best_end = 0;
      int32_t node = 0;
      for (size_t i = pos; i < text.size(); ++i) {
        auto it =
            trie.edges.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]));
        if (it == trie.edges.end()) break;
        node = it->second;
        if (trie.terminal[node] >= 0) {
          best = trie.terminal[node];
          best_end = i + 1;
        }
      }
      if (best < 0) {
        ++pos;
        continue;
      }
      const AddedToken& t = tokens_[best];
      if (t.single_word) {
        bool ok = true;
        if (pos > 0) {
          size_t p = char_before(text, pos);
          ok = !is_word_char(next_code_point(text, p));
        }
        if (ok && best_end < text.size()) {
          size_t p = best_end;
          ok = !is_word_char(next_code_point(text, p));
        }
        if (!ok) {
          ++pos;
          continue;
        }
      }
      size_t begin = pos, end = best_end;
      if (t.lstrip) {
        while (begin > plain_begin) {
          size_t p = char_before(text, begin);
          size_t q = p;
          if (!is_whitespace(next_code_point(text, q))) break;
          begin = p;
        }
      }
      if (t.rstrip) {
        while (end < text.size()) {
          size_t q = end;
          if (!is_whitespace(next_code_point(text, q))) break;
          end = q;
        }
      }
      if (begin > plain_begin) out->push_back(AddedSplit{plain_begin, begin, -1});
      out->push_back(AddedSplit{begin, end, t.id});
      pos = plain_begin = end;
    }
  }
  if (plain_begin < text.size()) out->push_back(AddedSplit{plain_begin, text.size(), -1});
}

}  // namespace msi::tok

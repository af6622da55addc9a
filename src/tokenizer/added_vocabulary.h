// AddedVocabulary: tokenizer.json's "added_tokens" (special tokens such as <|im_start|> and
// user-added words), which are cut out of the text before anything else. Matching is
// leftmost-longest; lstrip/rstrip swallow the whitespace beside a match, single_word only
// matches between non-word characters. Tokens with normalized=false match the raw text; those
// with normalized=true match the normalized text (their content normalized the same way), as in
// the `tokenizers` library.
//
// Immutable after build; thread-safe. split() allocates.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::tok {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text after splitting: plain text [begin, end) or an added token.
struct AddedSplit {
  size_t begin = 0;
  size_t end = 0;
  int32_t id = -1;  // the added token's id, or -1 for plain text
};

class AddedVocabulary {
 public:
  // `j` is the "added_tokens" list. The normalizer (may be null) spells the normalized=true
  // contents. InvalidArgument for a malformed entry.
  static Result<AddedVocabulary> from_json(const nlohmann::json& j, const Normalizer* normalizer);

  // Splits `text` on the tokens that match raw text (normalized=false), or with
  // `normalized_text` on those that match normalized text. Appends the pieces in order; plain
  // pieces are never empty, and whitespace swallowed by lstrip/rstrip is in no piece.
  void split(std::string_view text, bool normalized_text, std::vector<AddedSplit>* out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // The added token with this id, or nullptr.
  const AddedToken* find_id(int32_t id) const;
  const AddedToken* find_content(std::string_view content) const;

 private:
  // A byte trie over the contents of one kind of token (raw or normalized).
  struct Trie {
    std::vector<int32_t> terminal;                // [n_nodes] index into tokens_, or -1
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) → child node
    bool first_byte[256] = {};
    void add(std::string_view s, int32_t token_index);
    bool empty() const { return terminal.size() <= 1; }
  };
  void split_with(const Trie& trie, std::string_view text, std::vector<AddedSplit>* out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_;
  Trie normalized_;
};

}  // namespace msi::tok

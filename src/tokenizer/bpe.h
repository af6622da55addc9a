// BpeModel: the "model" of tokenizer.json when its type is BPE — vocabulary, ranked merges,
// unk_token, fuse_unk, byte_fallback (<0xAB> tokens), ignore_merges, continuing_subword_prefix
// and end_of_word_suffix — turning one pre-token into ids exactly as the `tokenizers` library
// does: start from the word's characters and repeatedly apply the lowest-ranked merge (leftmost
// on ties).
//
// Owns the vocabulary, the merges and a word cache; immutable after load apart from the cache,
// and thread-safe. tokenize() allocates.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/word_cache.h"

namespace msi::tok {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object. InvalidArgument for a malformed vocabulary or a
  // merge whose parts or result are not in it; Unimplemented for dropout.
  static Result<std::unique_ptr<BpeModel>> from_json(const nlohmann::json& model);

  // Appends the ids of one pre-token (a non-empty string of vocabulary characters).
  void tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token of `id`, or nullptr if no vocabulary entry has that id.
  const std::string* id_to_token(int32_t id) const;
  // 1 + the largest id of the vocabulary.
  int32_t id_end() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  // The merge loop: initial symbols of `word` → ids appended to `ids`.
  void merge_word(std::string_view word, std::vector<int32_t>* ids) const;

  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> vocab_;
  std::vector<std::string> id_to_token_;  // [id_end()]; "" where no token has the id
  std::vector<uint8_t> has_token_;        // [id_end()]
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xAB>" per byte, -1 if absent
  WordCache cache_;
};

}  // namespace msi::tok

// HfTokenizer: the implementation of Tokenizer (tokenizer.h) for Hugging Face tokenizer.json
// files: added tokens → normalizer → pre-tokenizer → BPE → post-processor to encode, and
// decoder (+ transformers' optional clean-up of spaces) to decode.
//
// Immutable after construction; thread-safe (the BPE word cache locks internally).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace msi::tok {

// What tokenizer_config.json adds to tokenizer.json.
struct TokenizerOptions {
  // transformers' clean_up_tokenization_spaces (absent means false, as in transformers 5).
  bool clean_up_tokenization_spaces = false;

  static TokenizerOptions from_config(const nlohmann::json& tokenizer_config);
};

class HfTokenizer final : public Tokenizer {
 public:
  // `tokenizer_json` is a parsed tokenizer.json. Unimplemented naming the component if a
  // model, normalizer, pre-tokenizer, post-processor or decoder type is not supported;
  // InvalidArgument if it is malformed. Allocates the vocabulary and merge tables.
  static Result<std::unique_ptr<HfTokenizer>> create(const nlohmann::json& tokenizer_json,
                                                     const TokenizerOptions& options);

  Result<std::vector<int32_t>> encode(std::string_view text,
                                      bool add_special_tokens) const override;
  Result<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  bool is_special(int32_t id) const override;

  // decode() without the clean-up of spaces (what IncrementalDetokenizer diffs).
  Result<std::string> decode_raw(std::span<const int32_t> ids, bool skip_special_tokens) const;
  bool clean_up_tokenization_spaces() const { return options_.clean_up_tokenization_spaces; }

 private:
  HfTokenizer() = default;
  static Result<std::unique_ptr<HfTokenizer>> create_unchecked(const nlohmann::json& tokenizer_json,
                                                               const TokenizerOptions& options);
  // Normalizes, splits on normalized added tokens, pre-tokenizes and runs the model on one
  // piece of text that holds no raw added token.
  Status encode_plain(std::string_view text, bool at_start, std::vector<int32_t>* ids) const;

  TokenizerOptions options_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  int64_t vocab_size_ = 0;
};

}  // namespace msi::tok

// Tokenizer: a Hugging Face tokenizer.json (BPE models: byte-level like Qwen/Llama-3/DeepSeek-V3/
// GPT-OSS, and SentencePiece-style with ▁ and byte fallback like Mistral/Mixtral/Llama-2), with
// its added/special tokens, normalizer, pre-tokenizer, post-processor and decoder — encode and
// decode exactly as the `tokenizers` library does. An unsupported component fails at load with a
// message naming it.
//
// Immutable after load; encode/decode are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // DIR/tokenizer.json. NotFound naming the file if absent.
  static Result<std::unique_ptr<Tokenizer>> load(const std::filesystem::path& model_dir);
  static Result<std::unique_ptr<Tokenizer>> from_json(const nlohmann::json& tokenizer_json);

  // Like `tokenizers`' encode(text, add_special_tokens): added tokens split out first, then
  // normalize → pre-tokenize → BPE, then (with add_special_tokens) the post-processor's template
  // (e.g. a BOS). Text must be valid UTF-8 (InvalidArgument otherwise).
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens = true) const = 0;
  // Like decode(ids, skip_special_tokens). Ids outside the vocabulary are OutOfRange.
  virtual Result<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const = 0;

  virtual int64_t vocab_size() const = 0;  // including added tokens (max id + 1)
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
};

// Streaming detokenization: feed output ids one at a time and get text pieces that never end in
// a partial UTF-8 character; the concatenation of all pieces plus flush() equals
// decode(all ids). Keeps a small window of previous ids (the decoder may depend on context, e.g.
// the leading-space strip of SentencePiece). Not thread-safe; one per sequence.
class IncrementalDetokenizer {
 public:
  // `prompt_ids` give the context (the output starts after them; they are never emitted).
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                         std::span<const int32_t> prompt_ids = {});
  // The text that `id` completes (possibly empty while a UTF-8 character is incomplete).
  Result<std::string> push(int32_t id);
  // Whatever is still held back (an incomplete character at the very end decodes to U+FFFD).
  Result<std::string> flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_[prefix_offset_, read_offset_) already emitted as text
  size_t read_offset_ = 0;
};

}  // namespace msi

// IncrementalDetokenizer (declared in tokenizer.h): decodes the window of ids from the last
// emitted id that yields text (prefix_offset_) with and without the ids not yet emitted (from
// read_offset_ on), and emits the difference.
//
// NOTE: the window starts with an id whose text was already emitted, so decoders that treat the
// first token specially (SentencePiece's leading-space strip) only ever alter text outside the
// diff. Text is emitted only at "safe" ends: not inside a UTF-8 character (no trailing U+FFFD)
// and, with transformers' clean-up of spaces, not where a clean-up rule could still match across
// the end (e.g. " n" before "'t"). From a safe end on, the decoded text of a longer window
// extends the shorter one, so the pieces concatenate to decode(all ids).
#include <algorithm>
#include <string_view>

#include "tokenizer/decoder.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace msi {

namespace {

// Decodes without the clean-up when the tokenizer is ours (the clean-up is applied to both
// sides of the diff separately).
Result<std::string> decode_for_diff(const Tokenizer& t, std::span<const int32_t> ids, bool skip) {
  if (const auto* hf = dynamic_cast<const tok::HfTokenizer*>(&t)) return hf->decode_raw(ids, skip);
  return t.decode(ids, skip);
}

bool cleans_up(const Tokenizer& t) {
  const auto* hf = dynamic_cast<const tok::HfTokenizer*>(&t);
  return hf != nullptr && hf->clean_up_tokenization_spaces();
}

// The text may still change when more follows: an incomplete character (decoded as U+FFFD), or
// with the clean-up, the start of a rule (" ", " '", " n", " n'", " 'r", " 'v").
bool unsafe_end(std::string_view raw, bool clean_up) {
  if (raw.ends_with(tok::kReplacementUtf8)) return true;
  if (!clean_up) return false;
  for (std::string_view tail : {" ", " '", " n", " n'", " 'r", " 'v"}) {
    if (raw.ends_with(tail)) return true;
  }
  return false;
}

// Length of the common prefix of a and b, cut back to a UTF-8 character boundary.
size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  const size_t limit = std::min(a.size(), b.size());
  while (n < limit && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<uint8_t>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

// The index of the last id in [begin, end) that yields text (an id skipped as special yields
// none), or `begin` if there is none.
size_t last_text_id(const Tokenizer& t, bool skip, std::span<const int32_t> ids, size_t begin,
                    size_t end) {
  for (size_t i = end; i-- > begin;) {
    if (!(skip && t.is_special(ids[i]))) return i;
  }
  return begin;
}

// Emits full[len(prefix):], where prefix and full decode ids[prefix_offset, read_offset) and
// ids[prefix_offset, end), and moves the window on: read_offset to the end, prefix_offset to the
// last id with text.
Result<std::string> emit(const Tokenizer& t, bool skip, std::span<const int32_t> ids,
                         size_t& prefix_offset, size_t& read_offset, std::string full) {
  const bool clean_up = cleans_up(t);
  MSI_ASSIGN_OR_RETURN(
      std::string prefix,
      decode_for_diff(t, ids.subspan(prefix_offset, read_offset - prefix_offset), skip));
  if (clean_up) {
    prefix = tok::clean_up_tokenization(std::move(prefix));
    full = tok::clean_up_tokenization(std::move(full));
  }
  size_t n = prefix.size();
  if (full.compare(0, n, prefix) != 0) n = common_prefix(prefix, full);  // not expected
  read_offset = ids.size();
  prefix_offset = last_text_id(t, skip, ids, prefix_offset, read_offset);
  return full.substr(n);
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                                               std::span<const int32_t> prompt_ids)
    : tokenizer_(tokenizer),
      skip_special_(skip_special_tokens),
      ids_(prompt_ids.begin(), prompt_ids.end()),
      prefix_offset_(
          last_text_id(tokenizer, skip_special_tokens, prompt_ids, 0, prompt_ids.size())),
      read_offset_(prompt_ids.size()) {}

Result<std::string> IncrementalDetokenizer::push(int32_t id) {
  if (id < 0 || id >= tokenizer_.vocab_size() || !tokenizer_.id_to_token(id)) {
    return error(StatusCode::kOutOfRange, "detokenize: id {} is not in the vocabulary", id);
  }
  ids_.push_back(id);
  if (skip_special_ && tokenizer_.is_special(id)) return std::string();  // no text
  const std::span<const int32_t> ids(ids_);
  MSI_ASSIGN_OR_RETURN(std::string full,
                       decode_for_diff(tokenizer_, ids.subspan(prefix_offset_), skip_special_));
  if (unsafe_end(full, cleans_up(tokenizer_))) return std::string();
  return emit(tokenizer_, skip_special_, ids, prefix_offset_, read_offset_, std::move(full));
}

Result<std::string> IncrementalDetokenizer::flush() {
  if (read_offset_ == ids_.size()) return std::string();
  const std::span<const int32_t> ids(ids_);
  MSI_ASSIGN_OR_RETURN(std::string full,
                       decode_for_diff(tokenizer_, ids.subspan(prefix_offset_), skip_special_));
  return emit(tokenizer_, skip_special_, ids, prefix_offset_, read_offset_, std::move(full));
}

}  // namespace msi

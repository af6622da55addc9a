#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"

namespace msi::tok {

namespace {

// How a split treats the delimiters (the matches), as `tokenizers`' SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Segment {
  size_t begin, end;
  bool is_delimiter;
};

// Cuts `text` at the match spans (matches and the gaps between them, in order), then applies
// the behaviour and appends the non-empty pieces to `out`.
void split_by_spans(const PreToken& piece, const std::vector<Span>& matches, bool invert,
                    SplitBehavior behavior, std::vector<PreToken>* out) {
  const std::string& text = piece.text;
  std::vector<Segment> segs;
  segs.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Span& m : matches) {
    if (m.begin != prev) segs.push_back({prev, m.begin, invert});
    segs.push_back({m.begin, m.end, !invert});
    prev = m.end;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});

  std::vector<Segment> merged;
  merged.reserve(segs.size());
  bool previous_delim = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& s : segs) {
        if (!s.is_delimiter) merged.push_back(s);
      }
      break;
    case SplitBehavior::kIsolated: merged = std::move(segs); break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Segment& s : segs) {
        if (s.is_delimiter && !previous_delim && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous_delim = s.is_delimiter;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t i = segs.size(); i-- > 0;) {
        const Segment& s = segs[i];
        if (s.is_delimiter && !previous_delim && !merged.empty()) {
          merged.back().begin = s.begin;
        } else {
          merged.push_back(s);
        }
        previous_delim = s.is_delimiter;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Segment& s : segs) {
        if (s.is_delimiter == previous_delim && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous_delim = s.is_delimiter;
      }
      break;
  }
  for (const Segment& s : merged) {
    if (s.end == s.begin) continue;
    out->push_back(PreToken{text.substr(s.begin, s.end - s.begin), piece.at_start && s.begin == 0});
  }
}

// Applies `fn` (piece → sub-pieces appended to its output) to every piece.
Status for_each_piece(std::vector<PreToken>* pieces,
                      const std::function<Status(const PreToken&, std::vector<PreToken>*)>& fn) {
  std::vector<PreToken> out;
  out.reserve(pieces->size());
  for (const PreToken& p : *pieces) MSI_RETURN_IF_ERROR(fn(p, &out));
  pieces->swap(out);
  return Status::ok();
}

class Split final : public PreTokenizer {
 public:
  Split(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Status pre_tokenize(std::vector<PreToken>* pieces) const override {
    std::vector<Span> matches;
    return for_each_piece(pieces, [&](const PreToken& p, std::vector<PreToken>* out) {
      MSI_RETURN_IF_ERROR(pattern_.find_all(p.text, &matches));
      split_by_spans(p, matches, invert_, behavior_, out);
      return Status::ok();
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, std::optional<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  Status pre_tokenize(std::vector<PreToken>* pieces) const override {
    std::vector<Span> matches;
    std::vector<PreToken> splits;
    return for_each_piece(pieces, [&](const PreToken& p, std::vector<PreToken>* out) {
      PreToken prefixed;
      const PreToken* src = &p;
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) {
        prefixed = PreToken{" " + p.text, p.at_start};
        src = &prefixed;
      }
      splits.clear();
      if (regex_) {
        MSI_RETURN_IF_ERROR(regex_->find_all(src->text, &matches));
        split_by_spans(*src, matches, /*invert=*/false, SplitBehavior::kIsolated, &splits);
      } else if (!src->text.empty()) {
        splits.push_back(*src);
      }
      for (PreToken& s : splits) {
        PreToken mapped{std::string(), s.at_start};
        mapped.text.reserve(s.text.size() * 2);
        append_byte_level(mapped.text, s.text);
        out->push_back(std::move(mapped));
      }
      return Status::ok();
    });
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  Status pre_tokenize(std::vector<PreToken>* pieces) const override {
    const Pattern delimiter = Pattern::literal(replacement_);
    std::vector<Span> matches;
    return for_each_piece(pieces, [&](const PreToken& p, std::vector<PreToken>* out) {
      PreToken r{std::string(), p.at_start};
      r.text.reserve(p.text.size() + replacement_.size());
      const bool prepend =
          scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start);
      if (prepend && !p.text.starts_with(replacement_) && !p.text.starts_with(' ')) {
        r.text.append(replacement_);
      }
      for (char c : p.text) {
        if (c == ' ') {
          r.text.append(replacement_);
        } else {
          r.text.push_back(c);
        }
      }
      if (!split_) {
        if (!r.text.empty()) out->push_back(std::move(r));
        return Status::ok();
      }
      MSI_RETURN_IF_ERROR(delimiter.find_all(r.text, &matches));
      split_by_spans(r, matches, /*invert=*/false, SplitBehavior::kMergedWithNext, out);
      return Status::ok();
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual) : individual_(individual) {}
  Status pre_tokenize(std::vector<PreToken>* pieces) const override {
    std::vector<Span> digits;
    return for_each_piece(pieces, [&](const PreToken& p, std::vector<PreToken>* out) {
      digits.clear();
      for (size_t pos = 0; pos < p.text.size();) {
        const size_t begin = pos;
        if (is_numeric(next_code_point(p.text, pos))) digits.push_back(Span{begin, pos});
      }
      split_by_spans(p, digits, /*invert=*/false,
                     individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, out);
      return Status::ok();
    });
  }

 private:
  bool individual_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  Status pre_tokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& p : items_) MSI_RETURN_IF_ERROR(p->pre_tokenize(pieces));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

Result<SplitBehavior> parse_behavior(const nlohmann::json& j) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return error(StatusCode::kUnimplemented, "pre-tokenizer Split: unsupported behavior {}",
               j.dump());
}

Result<std::unique_ptr<PreTokenizer>> make_split(const nlohmann::json& j) {
  if (!j.contains("pattern")) {
    return error(StatusCode::kInvalidArgument, "pre-tokenizer Split: missing \"pattern\"");
  }
  auto pattern = Pattern::from_json(j["pattern"]);
  if (!pattern.is_ok()) return pattern.status().with_context("pre-tokenizer Split");
  MSI_ASSIGN_OR_RETURN(SplitBehavior behavior,
                       parse_behavior(j.value("behavior", nlohmann::json())));
  return std::unique_ptr<PreTokenizer>(
      new Split(std::move(pattern).value(), behavior, j.value("invert", false)));
}

Result<std::unique_ptr<PreTokenizer>> make_metaspace(const nlohmann::json& j) {
  std::string replacement = j.value("replacement", std::string("\xE2\x96\x81"));  // U+2581 ▁
  PrependScheme scheme = PrependScheme::kAlways;
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    const std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") {
      scheme = PrependScheme::kAlways;
    } else if (s == "first") {
      scheme = PrependScheme::kFirst;
    } else if (s == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return error(StatusCode::kUnimplemented, "pre-tokenizer Metaspace: prepend_scheme '{}'", s);
    }
  } else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean()) {
    // Files written before prepend_scheme existed.
    scheme = j["add_prefix_space"].get<bool>() ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  return std::unique_ptr<PreTokenizer>(
      new Metaspace(std::move(replacement), scheme, j.value("split", true)));
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(StatusCode::kInvalidArgument, "pre-tokenizer without a \"type\": {}", j.dump());
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "Split") return make_split(j);
  if (type == "ByteLevel") {
    std::optional<Regex> regex;
    if (j.value("use_regex", true)) {
      MSI_ASSIGN_OR_RETURN(Regex r, Regex::compile(kGpt2SplitRegex));
      regex.emplace(std::move(r));
    }
    return std::unique_ptr<PreTokenizer>(
        new ByteLevel(j.value("add_prefix_space", true), std::move(regex)));
  }
  if (type == "Metaspace") return make_metaspace(j);
  if (type == "Digits") {
    return std::unique_ptr<PreTokenizer>(new Digits(j.value("individual_digits", false)));
  }
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return error(StatusCode::kInvalidArgument,
                   "pre-tokenizer Sequence: missing \"pretokenizers\"");
    }
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (const auto& item : j["pretokenizers"]) {
      MSI_ASSIGN_OR_RETURN(auto p, make_pre_tokenizer(item));
      if (p) items.push_back(std::move(p));
    }
    return std::unique_ptr<PreTokenizer>(new Sequence(std::move(items)));
  }
  return error(StatusCode::kUnimplemented, "unsupported pre-tokenizer type '{}'", type);
}

}  // namespace msi::tok

#include "tokenizer/decoder.h"

#include <string_view>

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"

namespace msi::tok {

namespace {

// Byte-level tokens back to bytes, then to text (invalid UTF-8 becomes U+FFFD); consecutive
// plain tokens are decoded together so a character split across tokens comes back whole.
class ByteLevel final : public Decoder {
 public:
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    std::vector<DecodeToken> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      out.push_back(DecodeToken{utf8_lossy(bytes), false});
      bytes.clear();
    };
    for (DecodeToken& t : *tokens) {
      if (t.added) {
        flush();
        out.push_back(std::move(t));
        continue;
      }
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t pos = 0; pos < t.text.size();) {
        const int b = byte_level_byte(next_code_point(t.text, pos));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!mapped) {  // not a byte-level token: its own UTF-8 bytes, as `tokenizers` does
        bytes.resize(mark);
        bytes += t.text;
      }
    }
    flush();
    tokens->swap(out);
    return Status::ok();
  }
};

// Replaces the metaspace character by a space; the first token loses one leading space (the
// one the pre-tokenizer prepended) unless prepend_scheme is "never".
class Metaspace final : public Decoder {
 public:
  Metaspace(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    const Pattern p = Pattern::literal(replacement_);
    std::string out;
    for (size_t i = 0; i < tokens->size(); ++i) {
      MSI_RETURN_IF_ERROR(p.replace_all((*tokens)[i].text, " ", &out));
      if (i == 0 && strip_first_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
      (*tokens)[i].text.swap(out);
    }
    return Status::ok();
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class Replace final : public Decoder {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    std::string out;
    for (DecodeToken& t : *tokens) {
      MSI_RETURN_IF_ERROR(pattern_.replace_all(t.text, content_, &out));
      t.text.swap(out);
    }
    return Status::ok();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xAB> tokens become the text of their bytes (invalid UTF-8 becomes U+FFFD, one per
// maximal invalid subpart, as JavaScript's TextDecoder does).
class ByteFallback final : public Decoder {
 public:
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    std::vector<DecodeToken> out;
    out.reserve(tokens->size());
    std::string bytes;
    bool in_run = false;
    for (DecodeToken& t : *tokens) {
      const int b = parse_byte(t.text);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        in_run = true;
        continue;
      }
      if (in_run) {
        out.push_back(DecodeToken{utf8_lossy(bytes), false});
        bytes.clear();
        in_run = false;
      }
      out.push_back(std::move(t));
    }
    if (in_run) out.push_back(DecodeToken{utf8_lossy(bytes), false});
    tokens->swap(out);
    return Status::ok();
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  // "<0xAB>" → 0xAB, else -1.
  static int parse_byte(std::string_view s) {
    if (s.size() != 6 || !s.starts_with("<0x") || s[5] != '>') return -1;
    const int hi = hex(s[3]), lo = hex(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class Fuse final : public Decoder {
 public:
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    if (tokens->size() <= 1) return Status::ok();
    DecodeToken fused;
    for (const DecodeToken& t : *tokens) fused.text += t.text;
    tokens->assign(1, std::move(fused));
    return Status::ok();
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content` (one character) from
// every token.
class Strip final : public Decoder {
 public:
  Strip(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    if (content_.empty()) return Status::ok();
    for (DecodeToken& t : *tokens) {
      std::string_view s = t.text;
      for (size_t i = 0; i < start_ && s.starts_with(content_); ++i)
        s.remove_prefix(content_.size());
      for (size_t i = 0; i < stop_ && s.ends_with(content_); ++i) s.remove_suffix(content_.size());
      t.text = std::string(s);
    }
    return Status::ok();
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class Sequence final : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  Status decode_chain(std::vector<DecodeToken>* tokens) const override {
    for (const auto& d : items_) MSI_RETURN_IF_ERROR(d->decode_chain(tokens));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

Result<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(StatusCode::kInvalidArgument, "decoder without a \"type\": {}", j.dump());
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevel());
  if (type == "Metaspace") {
    bool strip_first = true;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      strip_first = j["prepend_scheme"].get<std::string>() != "never";
    } else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean()) {
      strip_first = j["add_prefix_space"].get<bool>();
    }
    return std::unique_ptr<Decoder>(
        new Metaspace(j.value("replacement", std::string("\xE2\x96\x81")), strip_first));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) {
      return error(StatusCode::kInvalidArgument, "decoder Replace: missing \"pattern\"");
    }
    auto pattern = Pattern::from_json(j["pattern"]);
    if (!pattern.is_ok()) return pattern.status().with_context("decoder Replace");
    return std::unique_ptr<Decoder>(
        new Replace(std::move(pattern).value(), j.value("content", std::string())));
  }
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallback());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new Fuse());
  if (type == "Strip") {
    const std::string content = j.value("content", std::string(" "));
    size_t pos = 0;
    if (content.empty() || !is_valid_utf8(content) ||
        (next_code_point(content, pos), pos) != content.size()) {
      return error(StatusCode::kInvalidArgument, "decoder Strip: content must be one character");
    }
    return std::unique_ptr<Decoder>(
        new Strip(content, j.value("start", size_t{0}), j.value("stop", size_t{0})));
  }
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) {
      return error(StatusCode::kInvalidArgument, "decoder Sequence: missing \"decoders\"");
    }
    std::vector<std::unique_ptr<Decoder>> items;
    for (const auto& item : j["decoders"]) {
      MSI_ASSIGN_OR_RETURN(auto d, make_decoder(item));
      if (d) items.push_back(std::move(d));
    }
    return std::unique_ptr<Decoder>(new Sequence(std::move(items)));
  }
  return error(StatusCode::kUnimplemented, "unsupported decoder type '{}'", type);
}

std::string clean_up_tokenization(std::string text) {
  // The same replacements, in the same order, as transformers (each a global replace).
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  std::string out;
  for (const auto& [from, to] : kRules) {
    if (text.find(from) == std::string::npos) continue;
    out.clear();
    size_t prev = 0;
    for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, prev)) {
      out.append(text, prev, pos - prev);
      out.append(to);
      prev = pos + from.size();
    }
    out.append(text, prev, std::string::npos);
    text.swap(out);
  }
  return text;
}

}  // namespace msi::tok

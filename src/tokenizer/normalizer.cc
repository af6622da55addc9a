#include "tokenizer/normalizer.h"

#include <cstdlib>
#include <vector>

#include <utf8proc.h>

#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"

namespace msi::tok {

namespace {

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// NFC/NFD/NFKC/NFKD through utf8proc_map.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  Status normalize(std::string_view text, std::string* out) const override {
    if (is_ascii(text)) {  // every normalization form leaves ASCII alone
      out->assign(text);
      return Status::ok();
    }
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                            static_cast<utf8proc_option_t>(options_));
    if (n < 0) {
      return error(StatusCode::kInvalidArgument, "unicode normalization failed: {}",
                   utf8proc_errmsg(n));
    }
    out->assign(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    std::free(mapped);
    return Status::ok();
  }

 private:
  int options_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  Status normalize(std::string_view text, std::string* out) const override {
    out->clear();
    if (!text.empty()) out->append(prefix_);  // `tokenizers` leaves an empty string empty
    out->append(text);
    return Status::ok();
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status normalize(std::string_view text, std::string* out) const override {
    return pattern_.replace_all(text, content_, out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  Status normalize(std::string_view text, std::string* out) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t pos = begin;
        if (!is_whitespace(next_code_point(text, pos))) break;
        begin = pos;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!is_whitespace(next_code_point(text, pos))) break;
        end = start;
      }
    }
    out->assign(text.substr(begin, end - begin));
    return Status::ok();
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  Status normalize(std::string_view text, std::string* out) const override {
    out->assign(text);
    std::string next;
    for (const auto& n : items_) {
      MSI_RETURN_IF_ERROR(n->normalize(*out, &next));
      out->swap(next);
    }
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

Result<std::string> string_field(const nlohmann::json& j, const char* key, const char* type) {
  if (!j.contains(key) || !j[key].is_string()) {
    return error(StatusCode::kInvalidArgument, "normalizer {}: missing string \"{}\"", type, key);
  }
  return j[key].get<std::string>();
}

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(StatusCode::kInvalidArgument, "normalizer without a \"type\": {}", j.dump());
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "Prepend") {
    MSI_ASSIGN_OR_RETURN(std::string prefix, string_field(j, "prepend", "Prepend"));
    return std::unique_ptr<Normalizer>(new Prepend(std::move(prefix)));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) {
      return error(StatusCode::kInvalidArgument, "normalizer Replace: missing \"pattern\"");
    }
    auto pattern = Pattern::from_json(j["pattern"]);
    if (!pattern.is_ok()) return pattern.status().with_context("normalizer Replace");
    MSI_ASSIGN_OR_RETURN(std::string content, string_field(j, "content", "Replace"));
    return std::unique_ptr<Normalizer>(new Replace(std::move(pattern).value(), std::move(content)));
  }
  if (type == "Strip") {
    return std::unique_ptr<Normalizer>(
        new Strip(j.value("strip_left", true), j.value("strip_right", true)));
  }
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return error(StatusCode::kInvalidArgument, "normalizer Sequence: missing \"normalizers\"");
    }
    std::vector<std::unique_ptr<Normalizer>> items;
    for (const auto& item : j["normalizers"]) {
      MSI_ASSIGN_OR_RETURN(auto n, make_normalizer(item));
      if (n) items.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new Sequence(std::move(items)));
  }
  return error(StatusCode::kUnimplemented, "unsupported normalizer type '{}'", type);
}

}  // namespace msi::tok

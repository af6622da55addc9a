#include "tokenizer/jinja/lexer.h"

#include <cctype>
#include <cstdlib>

#include <fmt/format.h>
#include <utf8proc.h>

#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80);
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Length in bytes of the Python-whitespace code point starting at `pos`, or 0.
size_t space_at(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  utf8proc_int32_t cp = 0;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + pos),
                                        static_cast<utf8proc_ssize_t>(s.size() - pos), &cp);
  if (n <= 0 || !py_is_space(static_cast<char32_t>(cp))) return 0;
  return static_cast<size_t>(n);
}

// Length in bytes of the Python-whitespace code point ending at `end`, or 0.
size_t space_before(std::string_view s, size_t end) {
  for (size_t len = 1; len <= 4 && len <= end; ++len) {
    if ((static_cast<unsigned char>(s[end - len]) & 0xC0) != 0x80) {
      return space_at(s, end - len) == len ? len : 0;
    }
  }
  return 0;
}

size_t skip_spaces(std::string_view s, size_t pos) {
  while (size_t n = space_at(s, pos)) pos += n;
  return pos;
}

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Python's "unicode-escape" decoding of a string literal body.
Result<std::string> unescape(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 == body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    auto hex = [&](size_t n) -> Result<char32_t> {
      uint32_t v = 0;
      for (size_t k = 1; k <= n; ++k) {
        if (i + k >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[i + k]))) {
          return error(StatusCode::kInvalidArgument, "truncated \\{} escape", e);
        }
        v = v * 16 + static_cast<uint32_t>(std::stoi(std::string(1, body[i + k]), nullptr, 16));
      }
      i += n;
      return static_cast<char32_t>(v);
    };
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        MSI_ASSIGN_OR_RETURN(char32_t cp, hex(2));
        append_utf8(out, cp);
        break;
      }
      case 'u': {
        MSI_ASSIGN_OR_RETURN(char32_t cp, hex(4));
        append_utf8(out, cp);
        break;
      }
      case 'U': {
        MSI_ASSIGN_OR_RETURN(char32_t cp, hex(8));
        if (cp > 0x10FFFF) return error(StatusCode::kInvalidArgument, "illegal Unicode character");
        append_utf8(out, cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k) {
            v = v * 8 + static_cast<uint32_t>(body[++i] - '0');
          }
          append_utf8(out, v);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const Options& options) : src_(std::move(source)), o_(options) {}

  Result<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      MSI_RETURN_IF_ERROR(lex_root());
    }
    push(TokenType::kEof, "");
    return std::move(out_);
  }

 private:
  Status fail(const std::string& message) const {
    return error(StatusCode::kInvalidArgument, "line {}: {}", line_, message);
  }

  void push(TokenType type, std::string text) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = line_;
    out_.push_back(std::move(t));
  }

  bool at(size_t p, std::string_view s) const { return src_.compare(p, s.size(), s) == 0; }

  // Emits template text before a tag after the tag's whitespace control: `sign` '-' strips all
  // whitespace before it; otherwise lstrip_blocks strips a line's leading blanks before a
  // block/comment tag.
  void emit_text(std::string_view text, char sign, bool lstrip_applies) {
    int newlines = count_newlines(text);
    if (sign == '-') {
      size_t end = text.size();
      while (size_t n = space_before(text, end)) end -= n;
      text = text.substr(0, end);
    } else if (sign != '+' && o_.lstrip_blocks && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
          skip_spaces(text, l_pos) == text.size()) {
        text = text.substr(0, l_pos);
      }
    }
    if (!text.empty()) push(TokenType::kData, std::string(text));
    line_ += newlines;
  }

  // Consumes the end of a block-like tag: "+%}", "-%}" + whitespace, or "%}" + one newline
  // with trim_blocks. Returns false if none is at pos_.
  bool consume_tag_end(char close) {
    std::string end = {close, '}'};
    size_t p = pos_;
    if (close != '}' && at(p, "+" + end)) {
      p += 3;
    } else if (at(p, "-" + end)) {
      p = skip_spaces(src_, p + 3);
    } else if (at(p, end)) {
      p += 2;
      if (close != '}' && o_.trim_blocks && p < src_.size() && src_[p] == '\n') ++p;
    } else {
      return false;
    }
    finish_match(p);
    return true;
  }

  void finish_match(size_t new_pos) {
    std::string_view matched(src_.data() + pos_, new_pos - pos_);
    line_ += count_newlines(matched);
    line_starting_ = !matched.empty() && matched.back() == '\n';
    pos_ = new_pos;
  }

  // `{% raw %}` at p: returns the position after it, or npos.
  size_t match_raw_begin(size_t p) const {
    p += 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = skip_spaces(src_, p);
    if (!at(p, "raw")) return std::string::npos;
    p = skip_spaces(src_, p + 3);
    if (at(p, "-%}")) return skip_spaces(src_, p + 3);
    if (at(p, "%}")) return p + 2;
    return std::string::npos;
  }

  Status lex_root() {
    size_t p = pos_;
    while (true) {
      p = src_.find('{', p);
      if (p == std::string::npos || p + 1 >= src_.size()) {
        std::string_view rest(src_.data() + pos_, src_.size() - pos_);
        push(TokenType::kData, std::string(rest));
        finish_match(src_.size());
        return Status::ok();
      }
      char kind = src_[p + 1];
      if (kind == '%' || kind == '{' || kind == '#') break;
      ++p;
    }
    char kind = src_[p + 1];
    char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
    std::string_view text(src_.data() + pos_, p - pos_);
    size_t raw_end = kind == '%' ? match_raw_begin(p) : std::string::npos;
    emit_text(text, sign, kind != '{');
    pos_ = p;
    if (raw_end != std::string::npos) {
      finish_match(raw_end);
      return lex_raw();
    }
    finish_match(p + 2 + (sign != 0 ? 1 : 0));
    if (kind == '#') return lex_comment();
    push(kind == '%' ? TokenType::kBlockBegin : TokenType::kVariableBegin, "");
    return lex_tag(kind == '%' ? '%' : '}');
  }

  Status lex_comment() {
    if (pos_ >= src_.size()) return Status::ok();  // like Jinja: "{#" at the very end is dropped
    for (size_t p = pos_; p < src_.size(); ++p) {
      if (at(p, "+#}") || at(p, "-#}") || at(p, "#}")) {
        line_ += count_newlines(std::string_view(src_.data() + pos_, p - pos_));
        pos_ = p;
        consume_tag_end('#');
        return Status::ok();
      }
    }
    return fail("Missing end of comment tag");
  }

  Status lex_raw() {
    for (size_t p = src_.find("{%", pos_); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : 0;
      if (sign) ++q;
      q = skip_spaces(src_, q);
      if (!at(q, "endraw")) continue;
      q = skip_spaces(src_, q + 6);
      if (!at(q, "+%}") && !at(q, "-%}") && !at(q, "%}")) continue;
      emit_text(std::string_view(src_.data() + pos_, p - pos_), sign, true);
      line_ += count_newlines(std::string_view(src_.data() + p, q - p));
      pos_ = q;
      consume_tag_end('%');
      return Status::ok();
    }
    return fail("Missing end of raw directive");
  }

  Status lex_tag(char close) {
    while (true) {
      if (balance_.empty() && consume_tag_end(close)) {
        push(close == '%' ? TokenType::kBlockEnd : TokenType::kVariableEnd, "");
        return Status::ok();
      }
      if (pos_ >= src_.size()) return Status::ok();  // the parser reports the missing end
      if (size_t n = space_at(src_, pos_)) {
        size_t p = skip_spaces(src_, pos_ + n);
        finish_match(p);
        continue;
      }
      MSI_RETURN_IF_ERROR(lex_token());
    }
  }

  // Length of a float literal at pos_ (Jinja's float_re), or 0.
  size_t match_float() const {
    if (pos_ > 0 && src_[pos_ - 1] == '.') return 0;
    auto digits = [&](size_t p) {  // (\d+_)*\d+
      size_t start = p;
      while (p < src_.size() &&
             (is_digit(src_[p]) ||
              (src_[p] == '_' && p > start && p + 1 < src_.size() && is_digit(src_[p + 1])))) {
        ++p;
      }
      return p;
    };
    size_t p = digits(pos_);
    if (p == pos_) return 0;
    bool frac = false;
    if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      p = digits(p + 1);
      frac = true;
    }
    if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      size_t r = digits(q);
      if (r > q) return r - pos_;
    }
    return frac ? p - pos_ : 0;
  }

  Status lex_token() {
    char c = src_[pos_];
    if (size_t n = match_float()) {
      std::string text = src_.substr(pos_, n);
      std::erase(text, '_');
      push(TokenType::kFloat, text);
      out_.back().float_value = std::strtod(text.c_str(), nullptr);
      finish_match(pos_ + n);
      return Status::ok();
    }
    if (is_digit(c)) return lex_integer();
    if (is_name_start(c)) {
      size_t p = pos_;
      while (p < src_.size() && is_name_char(src_[p])) ++p;
      push(TokenType::kName, src_.substr(pos_, p - pos_));
      finish_match(p);
      return Status::ok();
    }
    if (c == '\'' || c == '"') {
      size_t p = pos_ + 1;
      while (p < src_.size() && src_[p] != c) p += src_[p] == '\\' ? 2 : 1;
      if (p >= src_.size())
        return fail(
            fmt::format("unexpected char {} at {}", py_repr_string(std::string(1, c)), pos_));
      auto body = unescape(std::string_view(src_.data() + pos_ + 1, p - pos_ - 1));
      if (!body.is_ok()) return fail(body.status().message());
      push(TokenType::kString, std::move(body).value());
      finish_match(p + 1);
      return Status::ok();
    }
    static constexpr std::string_view kTwoCharOps[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoCharOps) {
      if (at(pos_, op)) {
        push(TokenType::kOperator, std::string(op));
        finish_match(pos_ + 2);
        return Status::ok();
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      return fail(fmt::format("unexpected char {} at {}", py_repr_string(std::string(1, c)), pos_));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance_.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance_.empty()) return fail(fmt::format("unexpected '{}'", c));
      char expected = balance_.back();
      balance_.pop_back();
      if (expected != c) return fail(fmt::format("unexpected '{}', expected '{}'", c, expected));
    }
    push(TokenType::kOperator, std::string(1, c));
    finish_match(pos_ + 1);
    return Status::ok();
  }

  Status lex_integer() {
    size_t p = pos_;
    int base = 10;
    if (src_[p] == '0' && p + 1 < src_.size() &&
        std::string_view("bBoOxX").find(src_[p + 1]) != std::string_view::npos) {
      char b = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      base = b == 'b' ? 2 : (b == 'o' ? 8 : 16);
      size_t q = p + 2;
      while (q < src_.size() &&
             (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_'))
        ++q;
      if (q > p + 2)
        p = q;
      else
        base = 10;
    }
    if (base == 10) {
      p = pos_;
      if (src_[p] == '0') {  // 0(_?0)*
        ++p;
        while (p < src_.size() &&
               (src_[p] == '0' || (src_[p] == '_' && p + 1 < src_.size() && src_[p + 1] == '0')))
          ++p;
      } else {
        while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() &&
                                                         is_digit(src_[p + 1]))))
          ++p;
      }
    }
    std::string text = src_.substr(pos_, p - pos_);
    std::string digits = base == 10 ? text : text.substr(2);
    std::erase(digits, '_');
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(digits.c_str(), &end, base);
    if (errno == ERANGE) return fail("integer literal " + text + " does not fit in 64 bits");
    push(TokenType::kInteger, text);
    out_.back().int_value = v;
    finish_match(p);
    return Status::ok();
  }

  std::string src_;
  Options o_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<char> balance_;
  std::vector<Token> out_;
};

std::string normalize_newlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      out += '\n';
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view source, const Options& options) {
  Lexer lexer(normalize_newlines(source, options.keep_trailing_newline), options);
  return lexer.run();
}

}  // namespace msi::jinja

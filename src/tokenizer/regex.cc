#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/check.h"
#include "tokenizer/utf8.h"

namespace msi::tok {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// Per-thread JIT stack: the default 32 KiB is too small for long runs of whitespace or letters.
struct ThreadMatchContext {
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadMatchContext() {
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    MSI_CHECK(context != nullptr && stack != nullptr, "PCRE2 out of memory");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchContext() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
  }
};

pcre2_match_context* thread_match_context() {
  thread_local ThreadMatchContext ctx;
  return ctx.context;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

std::string Regex::translate(std::string_view pattern) {
  // Escapes whose Oniguruma meaning differs from PCRE2's: PCRE2's \s also matches U+180E, its
  // \w misses combining marks, and its \h is horizontal space rather than a hex digit.
  static const std::string kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc})";
  static const std::string kHex = "0-9A-Fa-f";
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 >= pattern.size()) {
      if (c == '[' && !in_class) {
        in_class = true;
        out += c;
        // A ']' right after '[' or '[^' is a literal.
        if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
        if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
        continue;
      }
      if (c == ']' && in_class) in_class = false;
      out += c;
      continue;
    }
    const char e = pattern[++i];
    switch (e) {
      case 's': out += R"(\p{White_Space})"; break;
      case 'S': out += R"(\P{White_Space})"; break;
      case 'w': out += in_class ? kWord : "[" + kWord + "]"; break;
      case 'W': out += in_class ? R"(\W)" : "[^" + kWord + "]"; break;  // no complement in a class
      case 'h': out += in_class ? kHex : "[" + kHex + "]"; break;
      case 'H': out += in_class ? R"(\H)" : "[^" + kHex + "]"; break;
      case 'Q': {  // \Q...\E is copied verbatim
        const size_t end = pattern.find(R"(\E)", i + 1);
        const size_t stop = end == std::string_view::npos ? pattern.size() : end + 2;
        out += pattern.substr(i - 1, stop - (i - 1));
        i = stop - 1;
        break;
      }
      default: out += '\\'; out += e;
    }
  }
  return out;
}

Result<Regex> Regex::compile(std::string_view source) {
  const std::string pattern = translate(source);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  MSI_CHECK(cctx != nullptr, "PCRE2 out of memory");
  pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);  // '.' and '$' as in Oniguruma
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, cctx);
  pcre2_compile_context_free(cctx);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return error(StatusCode::kInvalidArgument, "regex '{}': {} at offset {} of '{}'", source,
                 reinterpret_cast<const char*>(message), error_offset, pattern);
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return Regex(std::move(c), std::string(source));
}

Status Regex::find_all(std::string_view text, std::vector<Span>* out) const {
  std::vector<Span>& spans = *out;
  spans.clear();
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code_->code, nullptr));
  MSI_CHECK(md != nullptr, "PCRE2 out of memory");
  pcre2_match_context* mctx = thread_match_context();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    // The text was validated once by the caller; skip PCRE2's per-call UTF check.
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start,
                                          PCRE2_NO_UTF_CHECK, md.get(), mctx)
                        : PCRE2_ERROR_JIT_BADOPTION;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION) {
      rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md.get(),
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc <= 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      return error(StatusCode::kInternal, "regex '{}' failed at byte {}: {}", pattern_, start,
                   reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    spans.push_back(Span{ov[0], ov[1]});
    if (ov[1] > ov[0]) {
      start = ov[1];
    } else {
      if (ov[1] >= text.size()) break;
      start = ov[1] + utf8_len(static_cast<uint8_t>(text[ov[1]]));
    }
  }
  return Status::ok();
}

}  // namespace msi::tok

// TokenStream: the lexer's tokens with a cursor, and the "expected X, got Y" errors Jinja's
// parser reports. The base of the expression and statement parsers.
//
// Owns its tokens; single-threaded (one per parse).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/lexer.h"

namespace msi::jinja {

// How Jinja names a token in messages: a name or operator itself, else its kind ("end of print
// statement", "string" ...).
std::string describe(const Token& t);

class TokenStream {
 public:
  // `tokens` ends with kEof.
  explicit TokenStream(std::vector<Token> tokens) : t_(std::move(tokens)) {}

 protected:
  const Token& cur() const { return t_[i_]; }
  const Token& look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(std::string_view op) const {
    return cur().type == TokenType::kOperator && cur().text == op;
  }
  bool is_name(std::string_view n) const {
    return cur().type == TokenType::kName && cur().text == n;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  // InvalidArgument "line N: message".
  Status fail(int line, const std::string& message) const;
  // "expected token 'X', got 'Y'" at the current token.
  Status unexpected(const std::string& expected) const;
  Status expect_op(std::string_view op);
  Status expect_type(TokenType type);
  Result<std::string> expect_name();

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
};

}  // namespace msi::jinja

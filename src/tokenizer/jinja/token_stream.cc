#include "tokenizer/jinja/token_stream.h"

#include <fmt/format.h>

namespace msi::jinja {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kData: return "template data / text";
    case TokenType::kVariableBegin: return "begin of print statement";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "begin of statement block";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kName:
    case TokenType::kOperator: return t.text;
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kEof: return "end of template";
  }
  return "?";
}

Status TokenStream::fail(int line, const std::string& message) const {
  return error(StatusCode::kInvalidArgument, "line {}: {}", line, message);
}

Status TokenStream::unexpected(const std::string& expected) const {
  if (cur().type == TokenType::kEof) {
    return fail(cur().line, fmt::format("unexpected end of template, expected '{}'.", expected));
  }
  return fail(cur().line, fmt::format("expected token '{}', got '{}'", expected, describe(cur())));
}

Status TokenStream::expect_op(std::string_view op) {
  if (!skip_op(op)) return unexpected(std::string(op));
  return Status::ok();
}

Status TokenStream::expect_type(TokenType type) {
  if (cur().type != type) {
    Token want;
    want.type = type;
    return unexpected(describe(want));
  }
  advance();
  return Status::ok();
}

Result<std::string> TokenStream::expect_name() {
  if (cur().type != TokenType::kName) return unexpected("name");
  std::string n = cur().text;
  advance();
  return n;
}

}  // namespace msi::jinja

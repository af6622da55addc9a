// ExprParser: Jinja's expression grammar over a TokenStream, with Jinja2's precedence —
// conditional expressions, or, and, not, chained comparisons with in / not in, + -, ~,
// * / // %, ** (left associative, as in Jinja), unary - +, postfix . [] () and slices, then
// `| filter` and `is test` — and its quirks (adjacent string literals concatenate; `x is test
// arg` takes one argument without parentheses).
//
// Single-threaded (one per parse).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/token_stream.h"

namespace msi::jinja {

class ExprParser : public TokenStream {
 public:
  using TokenStream::TokenStream;

 protected:
  // What the statement parser uses. parse_tuple parses `a, b` as a tuple (a lone expression
  // stays itself); `end_names` are names that end it early (`in` of a for loop); `simplified`
  // parses primaries only; `explicit_parens` allows the empty tuple `()`.
  Result<ExprPtr> parse_tuple(bool simplified, bool with_condexpr,
                              const std::vector<std::string>& end_names, bool explicit_parens);
  Result<ExprPtr> parse_expression(bool with_condexpr);
  // `| name(args) | ...`; with start_inline the first `|` is implied (filter blocks).
  Result<ExprPtr> parse_filter(ExprPtr input, bool start_inline);
  bool is_tuple_end(const std::vector<std::string>& end_names) const;

 private:
  static ExprPtr node(ExprKind kind, int line);
  static ExprPtr pair(ExprKind kind, int line, ExprPtr a, ExprPtr b);

  Result<ExprPtr> parse_condexpr();
  Result<ExprPtr> parse_or();
  Result<ExprPtr> parse_and();
  Result<ExprPtr> parse_not();
  Result<ExprPtr> parse_compare();
  // One left-associative level of binary operators over the next-tighter level.
  Result<ExprPtr> parse_binary_level(const std::vector<std::pair<const char*, BinaryOp>>& ops,
                                     Result<ExprPtr> (ExprParser::*next)());
  Result<ExprPtr> parse_math1();
  Result<ExprPtr> parse_concat();
  Result<ExprPtr> parse_math2();
  Result<ExprPtr> parse_pow();
  Result<ExprPtr> parse_unary_with_filter();
  Result<ExprPtr> parse_unary(bool with_filter);
  Result<ExprPtr> parse_primary();
  Result<ExprPtr> parse_list_or_dict();
  Result<ExprPtr> parse_postfix(ExprPtr expr);
  Result<ExprPtr> parse_filter_expr(ExprPtr expr);
  Result<ExprPtr> parse_subscript(ExprPtr obj);
  // An index expression, or a slice (returned through *slice with operands[0] left null).
  Result<ExprPtr> parse_subscribed(ExprPtr* slice);
  Status parse_call_args(ArgsExpr* args);
  Result<ExprPtr> parse_call(ExprPtr callee);
  Result<std::string> parse_dotted_name();
  Result<ExprPtr> parse_test(ExprPtr input);
};

}  // namespace msi::jinja

#include "tokenizer/jinja/expr_parser.h"

#include <optional>

#include <fmt/format.h>

namespace msi::jinja {

ExprPtr ExprParser::node(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

bool ExprParser::is_tuple_end(const std::vector<std::string>& end_names) const {
  if (cur().type == TokenType::kVariableEnd || cur().type == TokenType::kBlockEnd || is_op(")"))
    return true;
  return cur().type == TokenType::kName &&
         std::find(end_names.begin(), end_names.end(), cur().text) != end_names.end();
}

Result<ExprPtr> ExprParser::parse_tuple(bool simplified, bool with_condexpr,
                                        const std::vector<std::string>& end_names,
                                        bool explicit_parens) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) MSI_RETURN_IF_ERROR(expect_op(","));
    if (is_tuple_end(end_names)) break;
    Result<ExprPtr> item = simplified ? parse_primary() : parse_expression(with_condexpr);
    if (!item.is_ok()) return item.status();
    items.push_back(std::move(item).value());
    if (!is_op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) {
      return fail(cur().line, fmt::format("Expected an expression, got '{}'", describe(cur())));
    }
  }
  ExprPtr t = node(ExprKind::kTuple, line);
  t->operands = std::move(items);
  return t;
}

Result<ExprPtr> ExprParser::parse_expression(bool with_condexpr) {
  return with_condexpr ? parse_condexpr() : parse_or();
}

Result<ExprPtr> ExprParser::parse_condexpr() {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr expr, parse_or());
  while (skip_name("if")) {
    ExprPtr c = node(ExprKind::kCondExpr, line);
    MSI_ASSIGN_OR_RETURN(ExprPtr test, parse_or());
    ExprPtr else_expr;
    if (skip_name("else")) {
      MSI_ASSIGN_OR_RETURN(else_expr, parse_condexpr());
    }
    c->operands.push_back(std::move(expr));
    c->operands.push_back(std::move(test));
    c->operands.push_back(std::move(else_expr));
    expr = std::move(c);
    line = cur().line;
  }
  return expr;
}

Result<ExprPtr> ExprParser::parse_or() {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
  while (skip_name("or")) {
    MSI_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
    left = pair(ExprKind::kOr, line, std::move(left), std::move(right));
    line = cur().line;
  }
  return left;
}

Result<ExprPtr> ExprParser::parse_and() {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
  while (skip_name("and")) {
    MSI_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
    left = pair(ExprKind::kAnd, line, std::move(left), std::move(right));
    line = cur().line;
  }
  return left;
}

Result<ExprPtr> ExprParser::parse_not() {
  if (is_name("not")) {
    int line = cur().line;
    advance();
    MSI_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
    ExprPtr n = node(ExprKind::kNot, line);
    n->operands.push_back(std::move(operand));
    return n;
  }
  return parse_compare();
}

Result<ExprPtr> ExprParser::parse_compare() {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
  ExprPtr cmp = node(ExprKind::kCompare, line);
  cmp->operands.push_back(std::move(first));
  while (true) {
    static const std::pair<const char*, CompareOp> kOps[] = {
        {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
        {"<=", CompareOp::kLe}, {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
    std::optional<CompareOp> op;
    for (const auto& [text, o] : kOps) {
      if (is_op(text)) op = o;
    }
    if (op) {
      advance();
    } else if (skip_name("in")) {
      op = CompareOp::kIn;
    } else if (is_name("not") && look().type == TokenType::kName && look().text == "in") {
      advance();
      advance();
      op = CompareOp::kNotIn;
    } else {
      break;
    }
    MSI_ASSIGN_OR_RETURN(ExprPtr operand, parse_math1());
    cmp->compare_ops.push_back(*op);
    cmp->operands.push_back(std::move(operand));
  }
  if (cmp->compare_ops.empty()) return std::move(cmp->operands[0]);
  return cmp;
}

Result<ExprPtr> ExprParser::parse_binary_level(
    const std::vector<std::pair<const char*, BinaryOp>>& ops,
    Result<ExprPtr> (ExprParser::*next)()) {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr left, (this->*next)());
  while (true) {
    const BinaryOp* op = nullptr;
    for (const auto& [text, o] : ops) {
      if (is_op(text)) op = &o;
    }
    if (op == nullptr) break;
    advance();
    MSI_ASSIGN_OR_RETURN(ExprPtr right, (this->*next)());
    ExprPtr b = pair(ExprKind::kBinary, line, std::move(left), std::move(right));
    b->binary_op = *op;
    left = std::move(b);
    line = cur().line;
  }
  return left;
}

Result<ExprPtr> ExprParser::parse_math1() {
  return parse_binary_level({{"+", BinaryOp::kAdd}, {"-", BinaryOp::kSub}},
                            &ExprParser::parse_concat);
}

Result<ExprPtr> ExprParser::parse_concat() {
  int line = cur().line;
  MSI_ASSIGN_OR_RETURN(ExprPtr first, parse_math2());
  if (!is_op("~")) return first;
  ExprPtr c = node(ExprKind::kConcat, line);
  c->operands.push_back(std::move(first));
  while (skip_op("~")) {
    MSI_ASSIGN_OR_RETURN(ExprPtr part, parse_math2());
    c->operands.push_back(std::move(part));
  }
  return c;
}

Result<ExprPtr> ExprParser::parse_math2() {
  return parse_binary_level({{"*", BinaryOp::kMul},
                             {"/", BinaryOp::kDiv},
                             {"//", BinaryOp::kFloorDiv},
                             {"%", BinaryOp::kMod}},
                            &ExprParser::parse_pow);
}

Result<ExprPtr> ExprParser::parse_pow() {
  return parse_binary_level({{"**", BinaryOp::kPow}}, &ExprParser::parse_unary_with_filter);
}

Result<ExprPtr> ExprParser::parse_unary_with_filter() { return parse_unary(true); }

Result<ExprPtr> ExprParser::parse_unary(bool with_filter) {
  int line = cur().line;
  ExprPtr expr;
  if (is_op("-") || is_op("+")) {
    ExprKind kind = is_op("-") ? ExprKind::kNeg : ExprKind::kPos;
    advance();
    MSI_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
    expr = node(kind, line);
    expr->operands.push_back(std::move(operand));
  } else {
    MSI_ASSIGN_OR_RETURN(expr, parse_primary());
  }
  MSI_ASSIGN_OR_RETURN(expr, parse_postfix(std::move(expr)));
  if (with_filter) {
    MSI_ASSIGN_OR_RETURN(expr, parse_filter_expr(std::move(expr)));
  }
  return expr;
}

Result<ExprPtr> ExprParser::parse_primary() {
  const Token& tok = cur();
  int line = tok.line;
  if (tok.type == TokenType::kName) {
    ExprPtr e = node(ExprKind::kLiteral, line);
    const std::string& n = tok.text;
    if (n == "true" || n == "True")
      e->literal = Value::boolean(true);
    else if (n == "false" || n == "False")
      e->literal = Value::boolean(false);
    else if (n == "none" || n == "None")
      e->literal = Value::none();
    else {
      e->kind = ExprKind::kName;
      e->name = n;
    }
    advance();
    return e;
  }
  if (tok.type == TokenType::kString) {
    std::string s;
    while (cur().type == TokenType::kString) {
      s += cur().text;
      advance();
    }
    ExprPtr e = node(ExprKind::kLiteral, line);
    e->literal = Value::string(std::move(s));
    return e;
  }
  if (tok.type == TokenType::kInteger || tok.type == TokenType::kFloat) {
    ExprPtr e = node(ExprKind::kLiteral, line);
    e->literal = tok.type == TokenType::kInteger ? Value::integer(tok.int_value)
                                                 : Value::number(tok.float_value);
    advance();
    return e;
  }
  if (skip_op("(")) {
    MSI_ASSIGN_OR_RETURN(ExprPtr e, parse_tuple(false, true, {}, true));
    MSI_RETURN_IF_ERROR(expect_op(")"));
    return e;
  }
  if (is_op("[") || is_op("{")) return parse_list_or_dict();
  if (tok.type == TokenType::kEof) return fail(line, "unexpected end of template");
  return fail(line, fmt::format("unexpected '{}'", describe(tok)));
}

Result<ExprPtr> ExprParser::parse_list_or_dict() {
  bool is_dict = is_op("{");
  ExprPtr e = node(is_dict ? ExprKind::kDict : ExprKind::kList, cur().line);
  advance();
  const char* close = is_dict ? "}" : "]";
  while (!is_op(close)) {
    if (!e->operands.empty()) {
      MSI_RETURN_IF_ERROR(expect_op(","));
      if (is_op(close)) break;
    }
    MSI_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
    e->operands.push_back(std::move(item));
    if (is_dict) {
      MSI_RETURN_IF_ERROR(expect_op(":"));
      MSI_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      e->operands.push_back(std::move(value));
    }
  }
  MSI_RETURN_IF_ERROR(expect_op(close));
  return e;
}

Result<ExprPtr> ExprParser::parse_postfix(ExprPtr expr) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      MSI_ASSIGN_OR_RETURN(expr, parse_subscript(std::move(expr)));
    } else if (is_op("(")) {
      MSI_ASSIGN_OR_RETURN(expr, parse_call(std::move(expr)));
    } else {
      return expr;
    }
  }
}

Result<ExprPtr> ExprParser::parse_filter_expr(ExprPtr expr) {
  while (true) {
    if (is_op("|")) {
      MSI_ASSIGN_OR_RETURN(expr, parse_filter(std::move(expr), false));
    } else if (is_name("is")) {
      MSI_ASSIGN_OR_RETURN(expr, parse_test(std::move(expr)));
    } else if (is_op("(")) {
      MSI_ASSIGN_OR_RETURN(expr, parse_call(std::move(expr)));
    } else {
      return expr;
    }
  }
}

Result<ExprPtr> ExprParser::parse_subscript(ExprPtr obj) {
  int line = cur().line;
  if (skip_op(".")) {
    const Token& attr = cur();
    if (attr.type == TokenType::kName) {
      ExprPtr e = node(ExprKind::kGetattr, line);
      e->name = attr.text;
      e->operands.push_back(std::move(obj));
      advance();
      return e;
    }
    if (attr.type != TokenType::kInteger) return fail(attr.line, "expected name or number");
    ExprPtr key = node(ExprKind::kLiteral, attr.line);
    key->literal = Value::integer(attr.int_value);
    advance();
    return pair(ExprKind::kGetitem, line, std::move(obj), std::move(key));
  }
  advance();  // [
  std::vector<ExprPtr> args;
  ExprPtr slice;
  while (!is_op("]")) {
    if (!args.empty() || slice) MSI_RETURN_IF_ERROR(expect_op(","));
    MSI_ASSIGN_OR_RETURN(ExprPtr sub, parse_subscribed(&slice));
    if (sub) args.push_back(std::move(sub));
  }
  MSI_RETURN_IF_ERROR(expect_op("]"));
  if (slice) {
    if (!args.empty()) return fail(line, "tuples of slices are not supported");
    slice->operands[0] = std::move(obj);
    return slice;
  }
  if (args.empty()) return fail(line, "expected an index");
  ExprPtr key;
  if (args.size() == 1) {
    key = std::move(args[0]);
  } else {
    key = node(ExprKind::kTuple, line);
    key->operands = std::move(args);
  }
  return pair(ExprKind::kGetitem, line, std::move(obj), std::move(key));
}

Result<ExprPtr> ExprParser::parse_subscribed(ExprPtr* slice) {
  int line = cur().line;
  ExprPtr start;
  if (!is_op(":")) {
    MSI_ASSIGN_OR_RETURN(start, parse_expression(true));
    if (!is_op(":")) return start;
  }
  advance();  // :
  ExprPtr stop;
  ExprPtr step;
  if (!is_op(":") && !is_op("]") && !is_op(",")) {
    MSI_ASSIGN_OR_RETURN(stop, parse_expression(true));
  }
  if (skip_op(":")) {
    if (!is_op("]") && !is_op(",")) {
      MSI_ASSIGN_OR_RETURN(step, parse_expression(true));
    }
  }
  ExprPtr s = node(ExprKind::kSlice, line);
  s->operands.push_back(nullptr);
  s->operands.push_back(std::move(start));
  s->operands.push_back(std::move(stop));
  s->operands.push_back(std::move(step));
  *slice = std::move(s);
  return ExprPtr();
}

Status ExprParser::parse_call_args(ArgsExpr* args) {
  int line = cur().line;
  MSI_RETURN_IF_ERROR(expect_op("("));
  bool require_comma = false;
  auto invalid = [&] { return fail(line, "invalid syntax for function call expression"); };
  while (!is_op(")")) {
    if (require_comma) {
      MSI_RETURN_IF_ERROR(expect_op(","));
      if (is_op(")")) break;
    }
    if (skip_op("*")) {
      if (args->star_args || args->star_kwargs) return invalid();
      MSI_ASSIGN_OR_RETURN(args->star_args, parse_expression(true));
    } else if (skip_op("**")) {
      if (args->star_kwargs) return invalid();
      MSI_ASSIGN_OR_RETURN(args->star_kwargs, parse_expression(true));
    } else if (cur().type == TokenType::kName && look().type == TokenType::kOperator &&
               look().text == "=") {
      if (args->star_kwargs) return invalid();
      std::string key = cur().text;
      advance();
      advance();
      MSI_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      args->keyword.emplace_back(std::move(key), std::move(value));
    } else {
      if (args->star_args || args->star_kwargs || !args->keyword.empty()) return invalid();
      MSI_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      args->positional.push_back(std::move(value));
    }
    require_comma = true;
  }
  return expect_op(")");
}

Result<ExprPtr> ExprParser::parse_call(ExprPtr callee) {
  ExprPtr e = node(ExprKind::kCall, cur().line);
  MSI_RETURN_IF_ERROR(parse_call_args(&e->args));
  e->operands.push_back(std::move(callee));
  return e;
}

Result<std::string> ExprParser::parse_dotted_name() {
  MSI_ASSIGN_OR_RETURN(std::string name, expect_name());
  while (skip_op(".")) {
    MSI_ASSIGN_OR_RETURN(std::string part, expect_name());
    name += "." + part;
  }
  return name;
}

Result<ExprPtr> ExprParser::parse_filter(ExprPtr input, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) advance();
    start_inline = false;
    ExprPtr f = node(ExprKind::kFilter, cur().line);
    MSI_ASSIGN_OR_RETURN(f->name, parse_dotted_name());
    if (is_op("(")) MSI_RETURN_IF_ERROR(parse_call_args(&f->args));
    f->operands.push_back(std::move(input));
    input = std::move(f);
  }
  return input;
}

Result<ExprPtr> ExprParser::parse_test(ExprPtr input) {
  int line = cur().line;
  advance();  // is
  bool negated = skip_name("not");
  ExprPtr t = node(ExprKind::kTest, line);
  MSI_ASSIGN_OR_RETURN(t->name, parse_dotted_name());
  const Token& tok = cur();
  bool arg_start = tok.type == TokenType::kName || tok.type == TokenType::kString ||
                   tok.type == TokenType::kInteger || tok.type == TokenType::kFloat || is_op("(") ||
                   is_op("[") || is_op("{");
  if (is_op("(")) {
    MSI_RETURN_IF_ERROR(parse_call_args(&t->args));
  } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) return fail(tok.line, "You cannot chain multiple tests with is");
    MSI_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
    MSI_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
    t->args.positional.push_back(std::move(arg));
  }
  t->operands.push_back(std::move(input));
  if (!negated) return t;
  ExprPtr n = node(ExprKind::kNot, line);
  n->operands.push_back(std::move(t));
  return n;
}

ExprPtr ExprParser::pair(ExprKind kind, int line, ExprPtr a, ExprPtr b) {
  ExprPtr e = node(kind, line);
  e->operands.push_back(std::move(a));
  e->operands.push_back(std::move(b));
  return e;
}

}  // namespace msi::jinja

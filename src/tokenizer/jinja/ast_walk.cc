#include "tokenizer/jinja/ast_walk.h"

namespace msi::jinja {

namespace {

bool expr_uses_name(const Expr* e, std::string_view name) {
  if (e == nullptr) return false;
  if (e->kind == ExprKind::kName && e->name == name) return true;
  for (const ExprPtr& op : e->operands) {
    if (expr_uses_name(op.get(), name)) return true;
  }
  for (const ExprPtr& a : e->args.positional) {
    if (expr_uses_name(a.get(), name)) return true;
  }
  for (const auto& [_, a] : e->args.keyword) {
    if (expr_uses_name(a.get(), name)) return true;
  }
  return expr_uses_name(e->args.star_args.get(), name) ||
         expr_uses_name(e->args.star_kwargs.get(), name);
}

bool stmt_uses_name(const Stmt& s, std::string_view name) {
  if (expr_uses_name(s.expr.get(), name) || expr_uses_name(s.loop_filter.get(), name)) return true;
  for (const IfBranch& b : s.branches) {
    if (expr_uses_name(b.test.get(), name) || body_uses_name(b.body, name)) return true;
  }
  for (const MacroParam& p : s.params) {
    if (expr_uses_name(p.default_value.get(), name)) return true;
  }
  for (const auto& [_, value] : s.assignments) {
    if (expr_uses_name(value.get(), name)) return true;
  }
  return body_uses_name(s.body, name) || body_uses_name(s.else_body, name);
}

}  // namespace

bool body_uses_name(const Body& body, std::string_view name) {
  for (const StmtPtr& s : body) {
    if (stmt_uses_name(*s, name)) return true;
  }
  return false;
}

}  // namespace msi::jinja

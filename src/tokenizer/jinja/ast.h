// The Jinja syntax tree the parser builds and the evaluator walks: expressions (Expr) and
// statements (Stmt), each a tagged node whose fields are used per kind as documented below.
//
// A tree is immutable once parsed and owned by its Template; its literal Values hold no shared
// mutable state, so one tree may be rendered by several threads at once.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // operands: the items
  kTuple,     // operands: the items
  kDict,      // operands: key0, value0, key1, value1, ...
  kGetattr,   // operands[0].name
  kGetitem,   // operands[0][operands[1]]
  kSlice,     // operands[0][operands[1]:operands[2]:operands[3]] (null where omitted)
  kCall,      // operands[0](args)
  kFilter,    // operands[0] | name(args); operands[0] is null in a filter/set block's chain
  kTest,      // operands[0] is name(args)
  kNeg,       // -operands[0]
  kPos,       // +operands[0]
  kNot,       // not operands[0]
  kBinary,    // operands[0] binary_op operands[1]
  kConcat,    // operands[0] ~ operands[1] ~ ...
  kCompare,   // operands[0] compare_ops[0] operands[1] compare_ops[1] operands[2] ...
  kAnd,       // operands[0] and operands[1]
  kOr,        // operands[0] or operands[1]
  kCondExpr,  // operands[0] if operands[1] else operands[2] (null: no else)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct ArgsExpr {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> operands;
  ArgsExpr args;
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
};

// Where `set`, `for` and `with` store values.
struct Target {
  enum class Kind { kName, kTuple, kNamespaceAttr };
  Kind kind = Kind::kName;
  std::string name;           // kName; the namespace variable of kNamespaceAttr
  std::string attr;           // kNamespaceAttr: {% set ns.attr = ... %}
  std::vector<Target> items;  // kTuple
};

enum class StmtKind {
  kText,         // text
  kPrint,        // {{ expr }}
  kIf,           // branches (if + elifs), else_body
  kFor,          // for target in expr [if loop_filter] [recursive]: body, else_body
  kSet,          // set target = expr
  kSetBlock,     // set target [| expr filter chain]: body
  kMacro,        // macro text(params): body
  kCallBlock,    // call(params) expr: body becomes `caller`
  kFilterBlock,  // filter expr (a chain): body
  kWith,         // with assignments: body
  kScope,        // a body rendered in its own scope (transformers' {% generation %})
  kBreak,
  kContinue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct IfBranch {
  ExprPtr test;
  Body body;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: required
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr loop_filter;
  bool recursive = false;
  Target target;
  std::vector<IfBranch> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  std::vector<std::pair<Target, ExprPtr>> assignments;
  // kMacro / kCallBlock: whether the body names these (Jinja then accepts extra arguments).
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
};

}  // namespace msi::jinja

#include "tokenizer/jinja/evaluator.h"

#include <memory>

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/loop_context.h"
#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

// Macro calls nested deeper than this fail instead of exhausting the stack (each level takes a
// few KB of it).
constexpr int kMaxCallDepth = 100;

struct Frame;
using FramePtr = std::shared_ptr<Frame>;

// One scope. Lookups walk to the parent; `set` writes here.
struct Frame {
  explicit Frame(FramePtr p) : parent(std::move(p)) {}

  const Value* find(std::string_view name) const {
    for (const Frame* f = this; f != nullptr; f = f->parent.get()) {
      for (const auto& [n, v] : f->vars) {
        if (n == name) return &v;
      }
    }
    return nullptr;
  }

  void set(const std::string& name, Value value) {
    for (auto& [n, v] : vars) {
      if (n == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }

  FramePtr parent;
  Variables vars;
};

enum class Flow { kNormal, kBreak, kContinue };

class Evaluator {
 public:
  explicit Evaluator(const Variables& globals) : globals_(globals) {}

  Result<std::string> render(const Body& body, const Variables& context) {
    auto root = std::make_shared<Frame>(nullptr);
    root->vars = context;
    std::string out;
    out_ = &out;
    Result<Flow> r = exec_body(body, root);
    if (!r.is_ok()) return r.status();
    return out;
  }

 private:
  // Redirects output into a buffer for a scope (set blocks, macros, filter blocks).
  class Capture {
   public:
    explicit Capture(Evaluator* e) : e_(e), saved_(e->out_) { e_->out_ = &buf_; }
    ~Capture() { e_->out_ = saved_; }
    std::string take() { return std::move(buf_); }

   private:
    Evaluator* e_;
    std::string* saved_;
    std::string buf_;
  };

  // Tags an error with the line of the innermost node that saw it.
  Status locate(const Status& st, int line) {
    if (located_) return st;
    located_ = true;
    return Status(st.code(), fmt::format("line {}: {}", line, st.message()));
  }

  Value lookup(const std::string& name, const Frame& frame) const {
    if (const Value* v = frame.find(name)) return *v;
    for (const auto& [n, v] : globals_) {
      if (n == name) return v;
    }
    if (auto g = find_global(name)) return *g;
    return Value::undefined(fmt::format("'{}' is undefined", name));
  }

  // --- statements -------------------------------------------------------------------------

  Result<Flow> exec_body(const Body& body, const FramePtr& frame) {
    for (const StmtPtr& s : body) {
      Result<Flow> r = exec(*s, frame);
      if (!r.is_ok()) return locate(r.status(), s->line);
      if (*r != Flow::kNormal) return *r;
    }
    return Flow::kNormal;
  }

  Result<Flow> exec(const Stmt& s, const FramePtr& frame) {
    switch (s.kind) {
      case StmtKind::kText: *out_ += s.text; return Flow::kNormal;
      case StmtKind::kPrint: {
        MSI_ASSIGN_OR_RETURN(Value v, eval(*s.expr, frame));
        *out_ += py_str(v);
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const IfBranch& b : s.branches) {
          MSI_ASSIGN_OR_RETURN(Value test, eval(*b.test, frame));
          if (test.truthy()) return exec_body(b.body, frame);
        }
        return exec_body(s.else_body, frame);
      case StmtKind::kFor: return exec_for(s, frame);
      case StmtKind::kSet: {
        MSI_ASSIGN_OR_RETURN(Value v, eval(*s.expr, frame));
        MSI_RETURN_IF_ERROR(assign(s.target, std::move(v), frame));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        MSI_ASSIGN_OR_RETURN(Value v, render_scoped(s.body, frame));
        if (s.expr) {
          MSI_ASSIGN_OR_RETURN(v, eval_filter_chain(*s.expr, v, frame));
        }
        MSI_RETURN_IF_ERROR(assign(s.target, std::move(v), frame));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: frame->set(s.text, make_macro(s, s.text, frame)); return Flow::kNormal;
      case StmtKind::kCallBlock: {
        Value caller = make_macro(s, "caller", frame);
        MSI_ASSIGN_OR_RETURN(Value v, eval_call(*s.expr, frame, &caller));
        *out_ += py_str(v);
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        MSI_ASSIGN_OR_RETURN(Value body, render_scoped(s.body, frame));
        MSI_ASSIGN_OR_RETURN(Value v, eval_filter_chain(*s.expr, body, frame));
        *out_ += py_str(v);
        return Flow::kNormal;
      }
      case StmtKind::kWith: {
        auto inner = std::make_shared<Frame>(frame);
        for (const auto& [target, expr] : s.assignments) {
          MSI_ASSIGN_OR_RETURN(Value v, eval(*expr, frame));
          MSI_RETURN_IF_ERROR(assign(target, std::move(v), inner));
        }
        return exec_body(s.body, inner);
      }
      case StmtKind::kScope: return exec_body(s.body, std::make_shared<Frame>(frame));
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Result<Value> render_scoped(const Body& body, const FramePtr& frame) {
    Capture capture(this);
    MSI_ASSIGN_OR_RETURN(Flow flow, exec_body(body, std::make_shared<Frame>(frame)));
    (void)flow;
    return Value::string(capture.take());
  }

  Status assign(const Target& t, Value value, const FramePtr& frame) {
    switch (t.kind) {
      case Target::Kind::kName: frame->set(t.name, std::move(value)); return Status::ok();
      case Target::Kind::kNamespaceAttr: {
        Value ns = lookup(t.name, *frame);
        if (ns.kind() != Value::Kind::kNamespace) {
          return error(StatusCode::kInvalidArgument,
                       "Cannot assign attribute on non-namespace object");
        }
        ns.dict().set(t.attr, std::move(value));
        return Status::ok();
      }
      case Target::Kind::kTuple: {
        MSI_ASSIGN_OR_RETURN(ValueList items, iterate(value));
        if (items.size() < t.items.size()) {
          return error(StatusCode::kInvalidArgument,
                       "not enough values to unpack (expected {}, got {})", t.items.size(),
                       items.size());
        }
        if (items.size() > t.items.size()) {
          return error(StatusCode::kInvalidArgument, "too many values to unpack (expected {})",
                       t.items.size());
        }
        for (size_t i = 0; i < items.size(); ++i)
          MSI_RETURN_IF_ERROR(assign(t.items[i], items[i], frame));
        return Status::ok();
      }
    }
    return Status::ok();
  }

  Result<Flow> exec_for(const Stmt& s, const FramePtr& frame) {
    MSI_ASSIGN_OR_RETURN(Value iterable, eval(*s.expr, frame));
    MSI_ASSIGN_OR_RETURN(ValueList all, iterate(iterable));
    ValueList items;
    if (s.loop_filter) {
      for (Value& item : all) {
        auto probe = std::make_shared<Frame>(frame);
        MSI_RETURN_IF_ERROR(assign(s.target, item, probe));
        MSI_ASSIGN_OR_RETURN(Value keep, eval(*s.loop_filter, probe));
        if (keep.truthy()) items.push_back(std::move(item));
      }
    } else {
      items = std::move(all);
    }
    // NOTE: as in Jinja's generated code, the else block runs unless some iteration reached the
    // end of the body: an empty loop, but also one whose every iteration hit break/continue.
    bool run_else = true;
    auto n = static_cast<int64_t>(items.size());
    auto state = std::make_shared<LoopState>();
    for (int64_t i = 0; i < n; ++i) {
      auto inner = std::make_shared<Frame>(frame);
      MSI_RETURN_IF_ERROR(assign(s.target, items[static_cast<size_t>(i)], inner));
      inner->set("loop", make_loop_context(items, i, state));
      MSI_ASSIGN_OR_RETURN(Flow flow, exec_body(s.body, inner));
      if (flow == Flow::kNormal) run_else = false;
      if (flow == Flow::kBreak) break;
    }
    if (run_else) return exec_body(s.else_body, std::make_shared<Frame>(frame));
    return Flow::kNormal;
  }

  // --- macros -----------------------------------------------------------------------------

  Value make_macro(const Stmt& s, const std::string& name, const FramePtr& frame) {
    std::weak_ptr<Frame> weak = frame;
    return Value::callable(name, [this, &s, name, weak](const CallArgs& a) -> Result<Value> {
      FramePtr defining = weak.lock();
      if (!defining) {
        return error(StatusCode::kInvalidArgument,
                     "macro '{}' called after its defining scope ended", name);
      }
      return call_macro(s, name, defining, a);
    });
  }

  Result<Value> call_macro(const Stmt& s, const std::string& name, const FramePtr& defining,
                           const CallArgs& a) {
    if (depth_ >= kMaxCallDepth)
      return error(StatusCode::kInvalidArgument, "maximum recursion depth exceeded");
    auto frame = std::make_shared<Frame>(defining);
    std::vector<bool> given(s.params.size(), false);
    ValueList varargs;
    for (size_t i = 0; i < a.args.size(); ++i) {
      if (i < s.params.size()) {
        frame->set(s.params[i].name, a.args[i]);
        given[i] = true;
      } else if (s.uses_varargs) {
        varargs.push_back(a.args[i]);
      } else {
        return error(StatusCode::kInvalidArgument, "macro '{}' takes not more than {} argument(s)",
                     name, s.params.size());
      }
    }
    Value kwargs = Value::new_dict();
    for (const auto& [key, v] : a.kwargs) {
      size_t i = 0;
      while (i < s.params.size() && s.params[i].name != key) ++i;
      if (i < s.params.size()) {
        if (given[i]) {
          return error(StatusCode::kInvalidArgument,
                       "macro '{}' got multiple values for argument '{}'", name, key);
        }
        frame->set(key, v);
        given[i] = true;
      } else if (key == "caller" && s.uses_caller) {
        frame->set("caller", v);
      } else if (s.uses_kwargs) {
        kwargs.dict().set(key, v);
      } else {
        return error(StatusCode::kInvalidArgument, "macro '{}' takes no keyword argument '{}'",
                     name, key);
      }
    }
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (given[i]) continue;
      const MacroParam& p = s.params[i];
      if (p.default_value) {
        MSI_ASSIGN_OR_RETURN(Value v, eval(*p.default_value, frame));
        frame->set(p.name, std::move(v));
      } else {
        frame->set(p.name,
                   Value::undefined(fmt::format("parameter '{}' was not provided", p.name)));
      }
    }
    if (s.uses_varargs) frame->set("varargs", Value::tuple(std::move(varargs)));
    if (s.uses_kwargs) frame->set("kwargs", kwargs);
    if (s.uses_caller && frame->find("caller") == nullptr) {
      frame->set("caller", Value::undefined("No caller defined"));
    }
    ++depth_;
    Capture capture(this);
    Result<Flow> r = exec_body(s.body, frame);
    --depth_;
    if (!r.is_ok()) return r.status();
    return Value::string(capture.take());
  }

  // --- expressions ------------------------------------------------------------------------

  Result<Value> eval(const Expr& e, const FramePtr& frame) {
    Result<Value> r = eval_inner(e, frame);
    if (!r.is_ok()) return locate(r.status(), e.line);
    return r;
  }

  Result<CallArgs> eval_args(const ArgsExpr& a, const FramePtr& frame) {
    CallArgs out;
    for (const ExprPtr& p : a.positional) {
      MSI_ASSIGN_OR_RETURN(Value v, eval(*p, frame));
      out.args.push_back(std::move(v));
    }
    if (a.star_args) {
      MSI_ASSIGN_OR_RETURN(Value v, eval(*a.star_args, frame));
      MSI_ASSIGN_OR_RETURN(ValueList extra, iterate(v));
      out.args.insert(out.args.end(), extra.begin(), extra.end());
    }
    for (const auto& [k, p] : a.keyword) {
      MSI_ASSIGN_OR_RETURN(Value v, eval(*p, frame));
      out.kwargs.emplace_back(k, std::move(v));
    }
    if (a.star_kwargs) {
      MSI_ASSIGN_OR_RETURN(Value v, eval(*a.star_kwargs, frame));
      if (!v.is_mapping())
        return error(StatusCode::kInvalidArgument, "argument after ** must be a mapping");
      for (const auto& [k, x] : v.dict().entries()) out.kwargs.emplace_back(py_str(k), x);
    }
    return out;
  }

  Result<Value> eval_call(const Expr& e, const FramePtr& frame, const Value* caller) {
    MSI_ASSIGN_OR_RETURN(Value callee, eval(*e.operands[0], frame));
    MSI_ASSIGN_OR_RETURN(CallArgs args, eval_args(e.args, frame));
    if (caller != nullptr) args.kwargs.emplace_back("caller", *caller);
    if (callee.is_callable()) return callee.function()(args);
    if (callee.is_undefined()) return undefined_error(callee);
    return error(StatusCode::kInvalidArgument, "'{}' object is not callable", type_name(callee));
  }

  // Applies a filter chain whose innermost input slot is empty (filter and set blocks).
  Result<Value> eval_filter_chain(const Expr& e, const Value& input, const FramePtr& frame) {
    Value in = input;
    if (e.operands[0]) {
      MSI_ASSIGN_OR_RETURN(in, eval_filter_chain(*e.operands[0], input, frame));
    }
    MSI_ASSIGN_OR_RETURN(CallArgs args, eval_args(e.args, frame));
    return apply_filter(e.name, in, args);
  }

  Result<Value> eval_inner(const Expr& e, const FramePtr& frame) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: return lookup(e.name, *frame);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        ValueList items;
        for (const ExprPtr& op : e.operands) {
          MSI_ASSIGN_OR_RETURN(Value v, eval(*op, frame));
          items.push_back(std::move(v));
        }
        return e.kind == ExprKind::kList ? Value::list(std::move(items))
                                         : Value::tuple(std::move(items));
      }
      case ExprKind::kDict: {
        Value d = Value::new_dict();
        for (size_t i = 0; i + 1 < e.operands.size(); i += 2) {
          MSI_ASSIGN_OR_RETURN(Value k, eval(*e.operands[i], frame));
          MSI_ASSIGN_OR_RETURN(Value v, eval(*e.operands[i + 1], frame));
          if (k.is_sequence() && k.kind() == Value::Kind::kList) {
            return error(StatusCode::kInvalidArgument, "unhashable type: 'list'");
          }
          d.dict().set(std::move(k), std::move(v));
        }
        return d;
      }
      case ExprKind::kGetattr: {
        MSI_ASSIGN_OR_RETURN(Value obj, eval(*e.operands[0], frame));
        return get_attr(obj, e.name);
      }
      case ExprKind::kGetitem: {
        MSI_ASSIGN_OR_RETURN(Value obj, eval(*e.operands[0], frame));
        MSI_ASSIGN_OR_RETURN(Value key, eval(*e.operands[1], frame));
        return get_item(obj, key);
      }
      case ExprKind::kSlice: {
        MSI_ASSIGN_OR_RETURN(Value obj, eval(*e.operands[0], frame));
        Value bounds[3] = {Value::none(), Value::none(), Value::none()};
        for (int i = 0; i < 3; ++i) {
          if (e.operands[1 + i]) {
            MSI_ASSIGN_OR_RETURN(bounds[i], eval(*e.operands[1 + i], frame));
          }
        }
        return get_slice(obj, bounds[0], bounds[1], bounds[2]);
      }
      case ExprKind::kCall: return eval_call(e, frame, nullptr);
      case ExprKind::kFilter: {
        MSI_ASSIGN_OR_RETURN(Value in, eval(*e.operands[0], frame));
        MSI_ASSIGN_OR_RETURN(CallArgs args, eval_args(e.args, frame));
        return apply_filter(e.name, in, args);
      }
      case ExprKind::kTest: {
        MSI_ASSIGN_OR_RETURN(Value in, eval(*e.operands[0], frame));
        MSI_ASSIGN_OR_RETURN(CallArgs args, eval_args(e.args, frame));
        MSI_ASSIGN_OR_RETURN(bool r, apply_test(e.name, in, args));
        return Value::boolean(r);
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        MSI_ASSIGN_OR_RETURN(Value v, eval(*e.operands[0], frame));
        return e.kind == ExprKind::kNeg ? negate(v) : unary_plus(v);
      }
      case ExprKind::kNot: {
        MSI_ASSIGN_OR_RETURN(Value v, eval(*e.operands[0], frame));
        return Value::boolean(!v.truthy());
      }
      case ExprKind::kBinary: {
        MSI_ASSIGN_OR_RETURN(Value a, eval(*e.operands[0], frame));
        MSI_ASSIGN_OR_RETURN(Value b, eval(*e.operands[1], frame));
        return binary_op(e.binary_op, a, b);
      }
      case ExprKind::kConcat: {
        std::string out;
        for (const ExprPtr& op : e.operands) {
          MSI_ASSIGN_OR_RETURN(Value v, eval(*op, frame));
          out += py_str(v);
        }
        return Value::string(std::move(out));
      }
      case ExprKind::kCompare: {
        MSI_ASSIGN_OR_RETURN(Value left, eval(*e.operands[0], frame));
        for (size_t i = 0; i < e.compare_ops.size(); ++i) {
          MSI_ASSIGN_OR_RETURN(Value right, eval(*e.operands[i + 1], frame));
          MSI_ASSIGN_OR_RETURN(bool ok, compare(e.compare_ops[i], left, right));
          if (!ok) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case ExprKind::kAnd:
      case ExprKind::kOr: {
        MSI_ASSIGN_OR_RETURN(Value a, eval(*e.operands[0], frame));
        if (a.truthy() == (e.kind == ExprKind::kOr)) return a;
        return eval(*e.operands[1], frame);
      }
      case ExprKind::kCondExpr: {
        MSI_ASSIGN_OR_RETURN(Value test, eval(*e.operands[1], frame));
        if (test.truthy()) return eval(*e.operands[0], frame);
        if (e.operands[2]) return eval(*e.operands[2], frame);
        return Value::undefined(
            fmt::format("the inline if-expression on line {} evaluated to false and no else "
                        "section was defined.",
                        e.line));
      }
    }
    return error(StatusCode::kInternal, "unknown expression kind");
  }

  const Variables& globals_;
  std::string* out_ = nullptr;
  bool located_ = false;
  int depth_ = 0;
};

}  // namespace

Result<std::string> render_body(const Body& body, const Variables& context,
                                const Variables& globals) {
  Evaluator evaluator(globals);
  return evaluator.render(body, context);
}

}  // namespace msi::jinja

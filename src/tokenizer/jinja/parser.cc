#include "tokenizer/jinja/parser.h"

#include <algorithm>

#include <fmt/format.h>

#include "tokenizer/jinja/ast_walk.h"
#include "tokenizer/jinja/expr_parser.h"

namespace msi::jinja {

namespace {

// The statement grammar (template data, {{ }}, {% tags %}) on top of the expression parser.
class Parser : public ExprParser {
 public:
  using ExprParser::ExprParser;

  Result<Body> parse_template() {
    Body body;
    MSI_RETURN_IF_ERROR(subparse_until({}, &body));
    if (cur().type != TokenType::kEof) return fail(cur().line, "unexpected " + describe(cur()));
    return body;
  }

 private:
  // Parses until a block tag named in `end_tags` (left unconsumed, after its `{%`) or EOF.
  Status subparse_until(const std::vector<std::string>& end_tags, Body* body) {
    while (cur().type != TokenType::kEof) {
      const Token& tok = cur();
      if (tok.type == TokenType::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = tok.line;
        s->text = tok.text;
        body->push_back(std::move(s));
        advance();
      } else if (tok.type == TokenType::kVariableBegin) {
        advance();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kPrint;
        s->line = cur().line;
        MSI_ASSIGN_OR_RETURN(s->expr, parse_tuple(false, true, {}, false));
        MSI_RETURN_IF_ERROR(expect_type(TokenType::kVariableEnd));
        body->push_back(std::move(s));
      } else if (tok.type == TokenType::kBlockBegin) {
        advance();
        if (cur().type == TokenType::kName &&
            std::find(end_tags.begin(), end_tags.end(), cur().text) != end_tags.end()) {
          return Status::ok();
        }
        MSI_ASSIGN_OR_RETURN(StmtPtr s, parse_statement());
        MSI_RETURN_IF_ERROR(expect_type(TokenType::kBlockEnd));
        body->push_back(std::move(s));
      } else {
        return fail(tok.line, "unexpected " + describe(tok));
      }
    }
    return Status::ok();
  }

  // After a tag header: `%}`, the body, and the end tag (consumed when `drop_needle`).
  Status parse_statements(const std::vector<std::string>& end_tags, bool drop_needle, Body* body) {
    skip_op(":");
    MSI_RETURN_IF_ERROR(expect_type(TokenType::kBlockEnd));
    end_stack_.push_back(end_tags);
    Status st = subparse_until(end_tags, body);
    if (st.is_ok() && cur().type == TokenType::kEof) st = unknown_tag("", cur().line);
    end_stack_.pop_back();
    MSI_RETURN_IF_ERROR(st);
    if (drop_needle) advance();
    return Status::ok();
  }

  Result<StmtPtr> parse_statement() {
    const Token& tok = cur();
    if (tok.type != TokenType::kName) return fail(tok.line, "tag name expected");
    std::string tag = tok.text;
    auto s = std::make_unique<Stmt>();
    s->line = tok.line;
    tag_stack_.push_back(tag);
    Status st;
    if (tag == "if")
      st = parse_if(s.get());
    else if (tag == "for")
      st = parse_for(s.get());
    else if (tag == "set")
      st = parse_set(s.get());
    else if (tag == "macro")
      st = parse_macro(s.get());
    else if (tag == "call")
      st = parse_call_block(s.get());
    else if (tag == "filter")
      st = parse_filter_block(s.get());
    else if (tag == "with")
      st = parse_with(s.get());
    else if (tag == "generation")
      st = parse_generation(s.get());
    else if (tag == "print")
      st = parse_print(s.get());
    else if (tag == "break" || tag == "continue")
      st = parse_loop_control(s.get(), tag);
    else {
      tag_stack_.pop_back();
      return unknown_tag(tag, tok.line);
    }
    tag_stack_.pop_back();
    MSI_RETURN_IF_ERROR(st);
    return s;
  }

  // Jinja's message for an unknown tag, or for the end of the template (`tag` empty) while
  // blocks are open.
  Status unknown_tag(const std::string& tag, int line) const {
    std::string msg = tag.empty() ? "Unexpected end of template."
                                  : fmt::format("Encountered unknown tag '{}'.", tag);
    if (!end_stack_.empty()) {
      std::string looking;
      for (const std::string& t : end_stack_.back())
        looking += (looking.empty() ? "'" : " or '") + t + "'";
      bool expected = false;
      for (const auto& tags : end_stack_)
        expected = expected || std::find(tags.begin(), tags.end(), tag) != tags.end();
      if (!tag.empty() && expected) {
        msg += fmt::format(
            " You probably made a nesting mistake. Jinja is expecting this tag, but currently "
            "looking for {}.",
            looking);
      } else {
        msg += fmt::format(" Jinja was looking for the following tags: {}.", looking);
      }
    }
    if (!tag_stack_.empty()) {
      msg +=
          fmt::format(" The innermost block that needs to be closed is '{}'.", tag_stack_.back());
    }
    return fail(line, msg);
  }

  Status parse_if(Stmt* s) {
    s->kind = StmtKind::kIf;
    advance();
    while (true) {
      IfBranch branch;
      MSI_ASSIGN_OR_RETURN(branch.test, parse_tuple(false, false, {}, false));
      MSI_RETURN_IF_ERROR(parse_statements({"elif", "else", "endif"}, false, &branch.body));
      s->branches.push_back(std::move(branch));
      std::string tag = cur().text;
      advance();
      if (tag == "elif") continue;
      if (tag == "else") MSI_RETURN_IF_ERROR(parse_statements({"endif"}, true, &s->else_body));
      return Status::ok();
    }
  }

  Status parse_for(Stmt* s) {
    s->kind = StmtKind::kFor;
    advance();
    MSI_ASSIGN_OR_RETURN(s->target, parse_assign_target(false, {"in"}));
    if (!skip_name("in")) return unexpected("in");
    MSI_ASSIGN_OR_RETURN(s->expr, parse_tuple(false, false, {"recursive"}, false));
    if (skip_name("if")) {
      MSI_ASSIGN_OR_RETURN(s->loop_filter, parse_expression(true));
    }
    s->recursive = skip_name("recursive");
    if (s->recursive) return fail(s->line, "recursive loops are not supported");
    ++loop_depth_;
    Status st = parse_statements({"endfor", "else"}, false, &s->body);
    --loop_depth_;
    MSI_RETURN_IF_ERROR(st);
    std::string tag = cur().text;
    advance();
    if (tag == "else") MSI_RETURN_IF_ERROR(parse_statements({"endfor"}, true, &s->else_body));
    return Status::ok();
  }

  Status parse_set(Stmt* s) {
    advance();
    MSI_ASSIGN_OR_RETURN(s->target, parse_assign_target(true, {}));
    if (skip_op("=")) {
      s->kind = StmtKind::kSet;
      MSI_ASSIGN_OR_RETURN(s->expr, parse_tuple(false, true, {}, false));
      return Status::ok();
    }
    s->kind = StmtKind::kSetBlock;
    if (is_op("|")) {
      MSI_ASSIGN_OR_RETURN(s->expr, parse_filter(nullptr, false));
    }
    return parse_statements({"endset"}, true, &s->body);
  }

  Status parse_signature(Stmt* s) {
    MSI_RETURN_IF_ERROR(expect_op("("));
    while (!is_op(")")) {
      if (!s->params.empty()) MSI_RETURN_IF_ERROR(expect_op(","));
      MacroParam p;
      MSI_ASSIGN_OR_RETURN(p.name, expect_name());
      if (skip_op("=")) {
        MSI_ASSIGN_OR_RETURN(p.default_value, parse_expression(true));
      } else if (!s->params.empty() && s->params.back().default_value) {
        return fail(cur().line, "non-default argument follows default argument");
      }
      s->params.push_back(std::move(p));
    }
    return expect_op(")");
  }

  void note_special_names(Stmt* s) {
    s->uses_varargs = body_uses_name(s->body, "varargs");
    s->uses_kwargs = body_uses_name(s->body, "kwargs");
    s->uses_caller = body_uses_name(s->body, "caller");
  }

  Status parse_macro(Stmt* s) {
    s->kind = StmtKind::kMacro;
    advance();
    MSI_ASSIGN_OR_RETURN(s->text, expect_name());
    MSI_RETURN_IF_ERROR(parse_signature(s));
    int saved_depth = loop_depth_;
    loop_depth_ = 0;
    Status st = parse_statements({"endmacro"}, true, &s->body);
    loop_depth_ = saved_depth;
    note_special_names(s);
    return st;
  }

  Status parse_call_block(Stmt* s) {
    s->kind = StmtKind::kCallBlock;
    advance();
    if (is_op("(")) MSI_RETURN_IF_ERROR(parse_signature(s));
    MSI_ASSIGN_OR_RETURN(s->expr, parse_expression(true));
    if (s->expr->kind != ExprKind::kCall) return fail(s->line, "expected call");
    int saved_depth = loop_depth_;
    loop_depth_ = 0;
    Status st = parse_statements({"endcall"}, true, &s->body);
    loop_depth_ = saved_depth;
    note_special_names(s);
    return st;
  }

  Status parse_filter_block(Stmt* s) {
    s->kind = StmtKind::kFilterBlock;
    advance();
    MSI_ASSIGN_OR_RETURN(s->expr, parse_filter(nullptr, true));
    return parse_statements({"endfilter"}, true, &s->body);
  }

  Status parse_with(Stmt* s) {
    s->kind = StmtKind::kWith;
    advance();
    while (cur().type != TokenType::kBlockEnd) {
      if (!s->assignments.empty()) MSI_RETURN_IF_ERROR(expect_op(","));
      MSI_ASSIGN_OR_RETURN(Target target, parse_assign_target(false, {}));
      MSI_RETURN_IF_ERROR(expect_op("="));
      MSI_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      s->assignments.emplace_back(std::move(target), std::move(value));
    }
    return parse_statements({"endwith"}, true, &s->body);
  }

  Status parse_generation(Stmt* s) {
    s->kind = StmtKind::kScope;
    advance();
    return parse_statements({"endgeneration"}, true, &s->body);
  }

  Status parse_print(Stmt* s) {
    s->kind = StmtKind::kPrint;
    advance();
    MSI_ASSIGN_OR_RETURN(s->expr, parse_tuple(false, true, {}, false));
    return Status::ok();
  }

  Status parse_loop_control(Stmt* s, const std::string& tag) {
    s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
    if (loop_depth_ == 0) return fail(s->line, fmt::format("'{}' outside loop", tag));
    advance();
    return Status::ok();
  }

  // name | name.attr (with_namespace) | a, b (tuple of names)
  Result<Target> parse_assign_target(bool with_namespace,
                                     const std::vector<std::string>& end_names) {
    Target t;
    if (with_namespace && cur().type == TokenType::kName && look().type == TokenType::kOperator &&
        look().text == ".") {
      t.kind = Target::Kind::kNamespaceAttr;
      t.name = cur().text;
      advance();
      advance();
      MSI_ASSIGN_OR_RETURN(t.attr, expect_name());
      return t;
    }
    std::vector<Target> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) MSI_RETURN_IF_ERROR(expect_op(","));
      if (is_tuple_end(end_names)) break;
      MSI_ASSIGN_OR_RETURN(Target item, parse_target_item());
      items.push_back(std::move(item));
      if (!is_op(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (items.empty()) return fail(cur().line, "can't assign to nothing");
      return std::move(items[0]);
    }
    t.kind = Target::Kind::kTuple;
    t.items = std::move(items);
    return t;
  }

  Result<Target> parse_target_item() {
    Target t;
    if (skip_op("(")) {
      MSI_ASSIGN_OR_RETURN(t, parse_assign_target(false, {}));
      MSI_RETURN_IF_ERROR(expect_op(")"));
      return t;
    }
    if (cur().type != TokenType::kName)
      return fail(cur().line, fmt::format("can't assign to '{}'", describe(cur())));
    static const char* kConstants[] = {"true", "false", "none", "True", "False", "None"};
    for (const char* c : kConstants) {
      if (cur().text == c) return fail(cur().line, "can't assign to a constant");
    }
    t.name = cur().text;
    advance();
    return t;
  }

  int loop_depth_ = 0;
  std::vector<std::string> tag_stack_;
  std::vector<std::vector<std::string>> end_stack_;  // the end tags each open block waits for
};

}  // namespace

Result<Body> parse(std::string_view source, const Options& options) {
  MSI_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(source, options));
  Parser parser(std::move(tokens));
  return parser.parse_template();
}

}  // namespace msi::jinja

// jinja::Template: a parsed Jinja template that renders byte-identically to Python's jinja2
// (3.1) in an ImmutableSandboxedEnvironment with the loopcontrols extension — the engine behind
// chat templates. See lexer.h, parser.h and evaluator.h for the pieces; builtins.h lists the
// filters, tests and globals.
//
// Owns its syntax tree; immutable after parse. render() is thread-safe (each call has its own
// scopes and values) and allocates.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/evaluator.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

class Template {
 public:
  // InvalidArgument "line N: <message>" for a syntax error.
  static Result<std::shared_ptr<const Template>> parse(std::string_view source,
                                                       const Options& options = {});

  // `context`: a JSON object whose members become variables (objects keep their key order, so
  // use ordered_json where order matters, e.g. for `tojson`). `globals`: extra names such as
  // callables (Value::callable) looked up after the context. Errors (including ones a global
  // raises) are InvalidArgument "line N: <message>".
  Result<std::string> render(const nlohmann::ordered_json& context,
                             const Variables& globals = {}) const;
  Result<std::string> render(const nlohmann::json& context, const Variables& globals = {}) const;
  Result<std::string> render_values(const Variables& context, const Variables& globals = {}) const;

 private:
  Body body_;
};

}  // namespace msi::jinja

#include "tokenizer/jinja/template.h"

#include "tokenizer/jinja/parser.h"

namespace msi::jinja {

namespace {

template <typename Json>
Result<Variables> context_variables(const Json& context) {
  Variables vars;
  if (context.is_null()) return vars;
  if (!context.is_object()) {
    return error(StatusCode::kInvalidArgument, "a template context must be a JSON object");
  }
  for (auto it = context.begin(); it != context.end(); ++it) {
    vars.emplace_back(it.key(), Value::from_json(it.value()));
  }
  return vars;
}

}  // namespace

Result<std::shared_ptr<const Template>> Template::parse(std::string_view source,
                                                        const Options& options) {
  MSI_ASSIGN_OR_RETURN(Body body, jinja::parse(source, options));
  auto t = std::shared_ptr<Template>(new Template());
  t->body_ = std::move(body);
  return std::shared_ptr<const Template>(std::move(t));
}

Result<std::string> Template::render(const nlohmann::ordered_json& context,
                                     const Variables& globals) const {
  MSI_ASSIGN_OR_RETURN(Variables vars, context_variables(context));
  return render_values(vars, globals);
}

Result<std::string> Template::render(const nlohmann::json& context,
                                     const Variables& globals) const {
  MSI_ASSIGN_OR_RETURN(Variables vars, context_variables(context));
  return render_values(vars, globals);
}

Result<std::string> Template::render_values(const Variables& context,
                                            const Variables& globals) const {
  return render_body(body_, context, globals);
}

}  // namespace msi::jinja

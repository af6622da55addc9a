#include "tokenizer/pattern.h"

namespace msi::tok {

Result<Pattern> Pattern::from_json(const nlohmann::json& j) {
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    return literal(j["String"].get<std::string>());
  }
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    Pattern p;
    MSI_ASSIGN_OR_RETURN(Regex r, Regex::compile(j["Regex"].get<std::string>()));
    p.regex_.emplace(std::move(r));
    return p;
  }
  return error(StatusCode::kInvalidArgument,
               "pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}, got {}", j.dump());
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Status Pattern::find_all(std::string_view text, std::vector<Span>* out) const {
  if (regex_) return regex_->find_all(text, out);
  out->clear();
  if (literal_.empty()) return Status::ok();
  for (size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size())) {
    out->push_back(Span{pos, pos + literal_.size()});
  }
  return Status::ok();
}

Status Pattern::replace_all(std::string_view text, std::string_view content,
                            std::string* out) const {
  std::vector<Span> spans;
  MSI_RETURN_IF_ERROR(find_all(text, &spans));
  out->clear();
  size_t prev = 0;
  for (const Span& s : spans) {
    out->append(text.data() + prev, s.begin - prev);
    out->append(content);
    prev = s.end;
  }
  out->append(text.data() + prev, text.size() - prev);
  return Status::ok();
}

}  // namespace msi::tok

#include "tokenizer/post_processor.h"

#include <string>

namespace msi::tok {

namespace {

// The template as a list of pieces: special-token ids, and -1 where the sequence goes.
class Template final : public PostProcessor {
 public:
  explicit Template(std::vector<std::vector<int32_t>> pieces) : pieces_(std::move(pieces)) {}
  void process(std::vector<int32_t>* ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    out.reserve(ids->size() + 4);
    for (const auto& p : pieces_) {
      if (p.empty()) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.insert(out.end(), p.begin(), p.end());
      }
    }
    ids->swap(out);
  }

 private:
  std::vector<std::vector<int32_t>> pieces_;  // an empty piece stands for the sequence
};

class Identity final : public PostProcessor {
 public:
  void process(std::vector<int32_t>*, bool) const override {}
};

class Sequence final : public PostProcessor {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>* ids, bool add_special_tokens) const override {
    for (const auto& p : items_) p->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

Result<std::unique_ptr<PostProcessor>> make_template(const nlohmann::json& j) {
  if (!j.contains("single") || !j["single"].is_array()) {
    return error(StatusCode::kInvalidArgument,
                 "post-processor TemplateProcessing: missing \"single\"");
  }
  const nlohmann::json specials = j.value("special_tokens", nlohmann::json::object());
  std::vector<std::vector<int32_t>> pieces;
  for (const auto& item : j["single"]) {
    if (item.contains("Sequence")) {
      if (item["Sequence"].value("id", std::string()) != "A") {
        return error(StatusCode::kInvalidArgument,
                     "post-processor TemplateProcessing: single template uses sequence {}",
                     item["Sequence"].dump());
      }
      pieces.emplace_back();
    } else if (item.contains("SpecialToken")) {
      const std::string name = item["SpecialToken"].value("id", std::string());
      if (!specials.contains(name) || !specials[name].contains("ids") ||
          !specials[name]["ids"].is_array() || specials[name]["ids"].empty()) {
        return error(StatusCode::kInvalidArgument,
                     "post-processor TemplateProcessing: special token '{}' has no ids", name);
      }
      std::vector<int32_t> ids;
      for (const auto& id : specials[name]["ids"]) {
        if (!id.is_number_integer()) {
          return error(StatusCode::kInvalidArgument,
                       "post-processor TemplateProcessing: bad id for '{}'", name);
        }
        ids.push_back(id.get<int32_t>());
      }
      pieces.push_back(std::move(ids));
    } else {
      return error(StatusCode::kInvalidArgument,
                   "post-processor TemplateProcessing: unknown template item {}", item.dump());
    }
  }
  return std::unique_ptr<PostProcessor>(new Template(std::move(pieces)));
}

// BertProcessing / RobertaProcessing: {"cls": ["[CLS]", 101], "sep": ["[SEP]", 102]}.
Result<std::unique_ptr<PostProcessor>> make_cls_sep(const nlohmann::json& j,
                                                    const std::string& type) {
  auto id_of = [&](const char* key) -> Result<int32_t> {
    if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 ||
        !j[key][1].is_number_integer()) {
      return error(StatusCode::kInvalidArgument, "post-processor {}: bad \"{}\"", type, key);
    }
    return j[key][1].get<int32_t>();
  };
  MSI_ASSIGN_OR_RETURN(int32_t cls, id_of("cls"));
  MSI_ASSIGN_OR_RETURN(int32_t sep, id_of("sep"));
  return std::unique_ptr<PostProcessor>(new Template({{cls}, {}, {sep}}));
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<PostProcessor>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(StatusCode::kInvalidArgument, "post-processor without a \"type\": {}", j.dump());
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "TemplateProcessing") return make_template(j);
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new Identity());
  if (type == "BertProcessing" || type == "RobertaProcessing") return make_cls_sep(j, type);
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) {
      return error(StatusCode::kInvalidArgument, "post-processor Sequence: missing \"processors\"");
    }
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (const auto& item : j["processors"]) {
      MSI_ASSIGN_OR_RETURN(auto p, make_post_processor(item));
      if (p) items.push_back(std::move(p));
    }
    return std::unique_ptr<PostProcessor>(new Sequence(std::move(items)));
  }
  return error(StatusCode::kUnimplemented, "unsupported post-processor type '{}'", type);
}

}  // namespace msi::tok

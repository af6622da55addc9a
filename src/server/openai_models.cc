#include "server/openai_models.h"

#include <algorithm>

#include <fmt/format.h>

namespace msi::openai {

ordered_json model_card_json(const ModelCard& card) {
  ordered_json out = ordered_json::object();
  out["id"] = card.id;
  out["object"] = "model";
  out["created"] = card.created;
  out["owned_by"] = "msinfer";
  out["root"] = card.root;
  out["parent"] = nullptr;
  out["max_model_len"] = card.max_model_len;
  return out;
}

ordered_json models_response(std::span<const ModelCard> cards) {
  ordered_json data = ordered_json::array();
  for (const ModelCard& card : cards) data.push_back(model_card_json(card));
  ordered_json out = ordered_json::object();
  out["object"] = "list";
  out["data"] = std::move(data);
  return out;
}

ApiCheck check_model_name(const std::string& requested, std::span<const std::string> served) {
  if (std::find(served.begin(), served.end(), requested) != served.end()) return std::nullopt;
  return not_found(fmt::format("The model `{}` does not exist.", requested), "model");
}

}  // namespace msi::openai

// GET /v1/models: the model list, and the check that a request names a served model.
//
//   {"object": "list", "data": [{"id", "object": "model", "created", "owned_by": "msinfer",
//                                "root", "parent": null, "max_model_len"}]}
//
// Owns nothing but values; pure functions (thread-safe; they allocate the JSON they return).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "server/openai_error.h"

namespace msi::openai {

struct ModelCard {
  std::string id;       // the served model name (what requests put in "model")
  int64_t created = 0;  // unix seconds (server start)
  std::string root;     // the model directory or Hugging Face id it was loaded from
  int64_t max_model_len = 0;
};

ordered_json model_card_json(const ModelCard& card);
ordered_json models_response(std::span<const ModelCard> cards);

// nullopt when `requested` is one of `served`; else 404 "The model `x` does not exist." (vLLM's
// wording) with param "model".
ApiCheck check_model_name(const std::string& requested, std::span<const std::string> served);

}  // namespace msi::openai

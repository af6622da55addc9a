// Post-processors of tokenizer.json ("post_processor"), applied to the ids of one sequence:
// TemplateProcessing (its "single" template), BertProcessing and RobertaProcessing ([CLS] A
// [SEP]), ByteLevel (nothing to do for ids) and Sequence. Any other type fails at load with a
// message naming it.
//
// Immutable after construction; thread-safe. process() allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens around `ids` when `add_special_tokens`; otherwise leaves them.
  virtual void process(std::vector<int32_t>* ids, bool add_special_tokens) const = 0;
};

// nullptr for a JSON null. Unimplemented naming the type if unsupported.
Result<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j);

}  // namespace msi::tok

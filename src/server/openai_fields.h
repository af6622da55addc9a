// Typed readers for the fields of an OpenAI request body: each checks one JSON value's type and
// range and, when wrong, returns a 400 ApiError whose message names the field by its path
// ("'max_tokens' must be an integer", "'messages[2].role' must be a string") and whose `param` is
// that path. Shared by the request parsers of the OpenAI protocol layer.
//
// Conventions (those of vLLM's pydantic models):
// - An absent key and an explicit null read the same: nullopt ("use the default").
// - Integers: JSON integers, and floats with no fraction (16.0); booleans are never numbers.
// - Numbers: any JSON number.
//
// Stateless functions; thread-safe. They allocate only for error messages and results.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai_error.h"

namespace msi::openai {

struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
};

struct NumberRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;  // (min, max] instead of [min, max]
};

// Token ids: [0, INT32_MAX]; the server checks them against the vocabulary.
inline constexpr IntRange kTokenIdRange{0, std::numeric_limits<int32_t>::max()};

// "parent.key" ("key" when parent is empty) and "parent[index]".
std::string field_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, size_t index);

// Value readers: `v` is the field's value (not null), `path` its name in messages.
ApiResult<int64_t> int_value(const ordered_json& v, const std::string& path, IntRange range = {});
ApiResult<double> number_value(const ordered_json& v, const std::string& path,
                               NumberRange range = {});
// A list of token ids (possibly empty); element errors name "path[i]".
ApiResult<std::vector<int32_t>> token_ids_value(const ordered_json& v, const std::string& path);

// Field readers: look up `key` in the object `obj`; nullopt when absent or null. `parent` is the
// object's own path ("" for the request body, "stream_options", "messages[0]").
ApiResult<std::optional<int64_t>> read_int(const ordered_json& obj, std::string_view key,
                                           IntRange range = {}, std::string_view parent = {});
ApiResult<std::optional<double>> read_number(const ordered_json& obj, std::string_view key,
                                             NumberRange range = {}, std::string_view parent = {});
ApiResult<std::optional<bool>> read_bool(const ordered_json& obj, std::string_view key,
                                         std::string_view parent = {});
ApiResult<std::optional<std::string>> read_string(const ordered_json& obj, std::string_view key,
                                                  std::string_view parent = {});

// A required string: absent or null → "'key' is required".
ApiResult<std::string> read_required_string(const ordered_json& obj, std::string_view key,
                                            std::string_view parent = {});

// An unsupported numeric knob that is accepted only at its neutral value (presence_penalty = 0,
// repetition_penalty = 1): any other number → "'key' is not supported (only <neutral>)".
ApiCheck check_neutral_number(const ordered_json& obj, std::string_view key, double neutral);

// The request body must be a JSON object: else 400 "request body must be a JSON object".
ApiCheck check_body_is_object(const ordered_json& body);

}  // namespace msi::openai

#include "model/json_fields.h"

#include <limits>

namespace msi {

using nlohmann::json;

JsonFields::JsonFields(const json& obj, std::string file, std::string prefix)
    : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)) {}

const json* JsonFields::find(std::string_view key) const {
  if (!obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

Status JsonFields::type_error(std::string_view key, std::string_view expected) const {
  const json* value = find(key);
  return error(StatusCode::kInvalidArgument, "{} field '{}{}' must be {}, got {}", file_, prefix_,
               key, expected, value ? value->type_name() : "null");
}

Status JsonFields::missing(std::string_view key) const {
  return error(StatusCode::kInvalidArgument, "{} has no '{}{}'", file_, prefix_, key);
}

Result<int64_t> JsonFields::to_int(std::string_view key, const json& value) const {
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error(StatusCode::kInvalidArgument, "{} field '{}{}' is out of range: {}", file_,
                   prefix_, key, u);
    }
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return type_error(key, "an integer");
}

Result<int64_t> JsonFields::get_int(std::string_view key) const {
  const json* value = find(key);
  if (!value) return missing(key);
  return to_int(key, *value);
}

Result<int64_t> JsonFields::get_int(std::string_view key, int64_t fallback) const {
  const json* value = find(key);
  if (!value) return fallback;
  return to_int(key, *value);
}

Result<double> JsonFields::get_number(std::string_view key, double fallback) const {
  const json* value = find(key);
  if (!value) return fallback;
  if (!value->is_number()) return type_error(key, "a number");
  return value->get<double>();
}

Result<bool> JsonFields::get_bool(std::string_view key, bool fallback) const {
  const json* value = find(key);
  if (!value) return fallback;
  if (!value->is_boolean()) return type_error(key, "a boolean");
  return value->get<bool>();
}

Result<std::string> JsonFields::get_string(std::string_view key) const {
  const json* value = find(key);
  if (!value) return missing(key);
  if (!value->is_string()) return type_error(key, "a string");
  return value->get<std::string>();
}

Result<std::vector<int64_t>> JsonFields::get_int_list(std::string_view key) const {
  std::vector<int64_t> out;
  const json* value = find(key);
  if (!value) return out;
  if (!value->is_array()) {
    if (!value->is_number_integer()) return type_error(key, "an integer or a list of integers");
    MSI_ASSIGN_OR_RETURN(int64_t v, to_int(key, *value));
    out.push_back(v);
    return out;
  }
  for (const json& item : *value) {
    if (!item.is_number_integer()) return type_error(key, "an integer or a list of integers");
    MSI_ASSIGN_OR_RETURN(int64_t v, to_int(key, item));
    out.push_back(v);
  }
  return out;
}

}  // namespace msi

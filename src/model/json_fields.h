// JsonFields: typed reads of the fields of one JSON object (config.json and friends). A wrong
// JSON type or a missing required field becomes an InvalidArgument naming the file and field;
// no nlohmann exception escapes. Internal to the model module.
//
// Borrows the object (which must outlive the reader); thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi {

class JsonFields {
 public:
  // `file` names the source in messages ("config.json"); `prefix` qualifies nested fields
  // ("rope_parameters.").
  JsonFields(const nlohmann::json& obj, std::string file, std::string prefix = "");

  // The field, or nullptr when it is absent or null (HF writes null for "use the default").
  const nlohmann::json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  Result<int64_t> get_int(std::string_view key) const;  // required
  Result<int64_t> get_int(std::string_view key, int64_t fallback) const;
  Result<double> get_number(std::string_view key, double fallback) const;
  Result<bool> get_bool(std::string_view key, bool fallback) const;
  Result<std::string> get_string(std::string_view key) const;  // required
  // An integer or a list of integers; absent or null gives an empty list.
  Result<std::vector<int64_t>> get_int_list(std::string_view key) const;

  // "config.json field 'hidden_size' must be an integer, got string"
  Status type_error(std::string_view key, std::string_view expected) const;
  // "config.json has no 'hidden_size'"
  Status missing(std::string_view key) const;

 private:
  Result<int64_t> to_int(std::string_view key, const nlohmann::json& value) const;

  const nlohmann::json& obj_;
  std::string file_;
  std::string prefix_;
};

}  // namespace msi

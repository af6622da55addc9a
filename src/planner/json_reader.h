// FieldReader: typed reads of one JSON object's fields for the planner's files (hardware profiles,
// deployment plans), with errors that name the file kind and the field: "profile field
// 'attention[2].k1_ms' must be a number >= 0, got \"x\"", "plan has no 'kind'". Internal to the
// planner module. Borrows the object, which must outlive the reader; thread-compatible.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::planner {

class FieldReader {
 public:
  // `what` names the file kind in messages ("profile", "plan"); `prefix` qualifies nested fields
  // ("model.", "attention[2].").
  FieldReader(const nlohmann::json& obj, std::string what, std::string prefix = "")
      : obj_(obj), what_(std::move(what)), prefix_(std::move(prefix)) {}

  // The field, or nullptr when it is absent or null.
  const nlohmann::json* find(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  Status bad(std::string_view key, std::string_view expected) const {
    const nlohmann::json* v = find(key);
    return error(StatusCode::kInvalidArgument, "{} field '{}{}' must be {}, got {}", what_, prefix_,
                 key, expected, v ? v->dump() : "null");
  }
  Status missing(std::string_view key) const {
    return error(StatusCode::kInvalidArgument, "{} has no '{}{}'", what_, prefix_, key);
  }
  // A finite number >= min (> min when `strict`); `fallback` when absent, if given.
  Result<double> number(std::string_view key, double min, bool strict,
                        std::optional<double> fallback = std::nullopt) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback ? Result<double>(*fallback) : Result<double>(missing(key));
    const std::string expected = fmt::format("a number {} {}", strict ? ">" : ">=", min);
    if (!v->is_number()) return bad(key, expected);
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < min || (strict && d == min)) return bad(key, expected);
    return d;
  }
  // An integer >= min; `fallback` when absent, if given.
  Result<int64_t> integer(std::string_view key, int64_t min,
                          std::optional<int64_t> fallback = std::nullopt) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback ? Result<int64_t>(*fallback) : Result<int64_t>(missing(key));
    if (!v->is_number_integer() || v->get<int64_t>() < min)
      return bad(key, fmt::format("an integer >= {}", min));
    return v->get<int64_t>();
  }
  Result<std::string> string(std::string_view key, bool required = true) const {
    const nlohmann::json* v = find(key);
    if (!v) return required ? Result<std::string>(missing(key)) : Result<std::string>("");
    if (!v->is_string()) return bad(key, "a string");
    return v->get<std::string>();
  }

 private:
  const nlohmann::json& obj_;
  std::string what_;
  std::string prefix_;
};

}  // namespace msi::planner

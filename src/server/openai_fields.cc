#include "server/openai_fields.h"

#include <cmath>

#include <fmt/format.h>

namespace msi::openai {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// The value of `key` in `obj`, or nullptr when absent or null.
const ordered_json* find_value(const ordered_json& obj, std::string_view key) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

ApiError int_range_error(const std::string& path, IntRange range, const ordered_json& v) {
  std::string want;
  if (range.min != kInt64Min && range.max == kInt64Max) {
    want = fmt::format("at least {}", range.min);
  } else if (range.min == kInt64Min && range.max != kInt64Max) {
    want = fmt::format("at most {}", range.max);
  } else {
    want = fmt::format("between {} and {}", range.min, range.max);
  }
  return bad_request(fmt::format("'{}' must be {}, got {}", path, want, v.dump()), path);
}

}  // namespace

std::string field_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(std::string_view parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

ApiResult<int64_t> int_value(const ordered_json& v, const std::string& path, IntRange range) {
  // NOTE: out-of-int64 values are range errors (not type errors), so check in the widest type.
  bool in_int64 = true;
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    in_int64 = u <= static_cast<uint64_t>(kInt64Max);
    x = in_int64 ? static_cast<int64_t>(u) : kInt64Max;
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::trunc(d) != d) {
      return bad_request(fmt::format("'{}' must be an integer", path), path);
    }
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    in_int64 = d >= -9223372036854775808.0 && d < 9223372036854775808.0;
    x = in_int64 ? static_cast<int64_t>(d) : (d < 0 ? kInt64Min : kInt64Max);
  } else {
    return bad_request(fmt::format("'{}' must be an integer", path), path);
  }
  if (!in_int64 || x < range.min || x > range.max) return int_range_error(path, range, v);
  return x;
}

ApiResult<double> number_value(const ordered_json& v, const std::string& path, NumberRange range) {
  if (!v.is_number()) return bad_request(fmt::format("'{}' must be a number", path), path);
  const double x = v.get<double>();
  const bool below = range.min_exclusive ? !(x > range.min) : !(x >= range.min);
  if (below || !(x <= range.max)) {
    std::string want;
    if (range.min_exclusive) {
      want = fmt::format("in ({}, {}]", range.min, range.max);
    } else if (std::isinf(range.max)) {
      want = fmt::format("at least {}", range.min);
    } else if (std::isinf(range.min)) {
      want = fmt::format("at most {}", range.max);
    } else {
      want = fmt::format("between {} and {}", range.min, range.max);
    }
    return bad_request(fmt::format("'{}' must be {}, got {}", path, want, v.dump()), path);
  }
  return x;
}

ApiResult<std::vector<int32_t>> token_ids_value(const ordered_json& v, const std::string& path) {
  if (!v.is_array()) {
    return bad_request(fmt::format("'{}' must be a list of token ids (integers)", path), path);
  }
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    MSI_API_ASSIGN_OR_RETURN(int64_t id, int_value(v[i], index_path(path, i), kTokenIdRange));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

ApiResult<std::optional<int64_t>> read_int(const ordered_json& obj, std::string_view key,
                                           IntRange range, std::string_view parent) {
  const ordered_json* v = find_value(obj, key);
  if (v == nullptr) return std::optional<int64_t>();
  MSI_API_ASSIGN_OR_RETURN(int64_t x, int_value(*v, field_path(parent, key), range));
  return std::optional<int64_t>(x);
}

ApiResult<std::optional<double>> read_number(const ordered_json& obj, std::string_view key,
                                             NumberRange range, std::string_view parent) {
  const ordered_json* v = find_value(obj, key);
  if (v == nullptr) return std::optional<double>();
  MSI_API_ASSIGN_OR_RETURN(double x, number_value(*v, field_path(parent, key), range));
  return std::optional<double>(x);
}

ApiResult<std::optional<bool>> read_bool(const ordered_json& obj, std::string_view key,
                                         std::string_view parent) {
  const ordered_json* v = find_value(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) {
    const std::string path = field_path(parent, key);
    return bad_request(fmt::format("'{}' must be a boolean", path), path);
  }
  return std::optional<bool>(v->get<bool>());
}

ApiResult<std::optional<std::string>> read_string(const ordered_json& obj, std::string_view key,
                                                  std::string_view parent) {
  const ordered_json* v = find_value(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) {
    const std::string path = field_path(parent, key);
    return bad_request(fmt::format("'{}' must be a string", path), path);
  }
  return std::optional<std::string>(v->get<std::string>());
}

ApiResult<std::string> read_required_string(const ordered_json& obj, std::string_view key,
                                            std::string_view parent) {
  MSI_API_ASSIGN_OR_RETURN(std::optional<std::string> s, read_string(obj, key, parent));
  if (!s.has_value()) {
    const std::string path = field_path(parent, key);
    return bad_request(fmt::format("'{}' is required", path), path);
  }
  return *std::move(s);
}

ApiCheck check_neutral_number(const ordered_json& obj, std::string_view key, double neutral) {
  auto x = read_number(obj, key);
  if (!x.is_ok()) return x.error();
  if (x->has_value() && **x != neutral) {
    return bad_request(fmt::format("'{}' is not supported (only {})", key, neutral),
                       std::string(key));
  }
  return std::nullopt;
}

ApiCheck check_body_is_object(const ordered_json& body) {
  if (!body.is_object()) return bad_request("request body must be a JSON object");
  return std::nullopt;
}

}  // namespace msi::openai

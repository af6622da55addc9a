#include "server/openai_protocol.h"

#include <algorithm>

#include <fmt/format.h>

namespace msi::openai {
namespace {

// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count).
// Linear, no recursion, so it is safe on hostile input.
int json_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; keep what follows.
std::string parse_error_text(const std::string& what) {
  const size_t close = what.find("] ");
  return close == std::string::npos ? what : what.substr(close + 2);
}

}  // namespace

ApiResult<ordered_json> parse_json_body(std::string_view body, size_t max_body_bytes) {
  if (body.size() > max_body_bytes) {
    return ApiError{
        413,
        {},
        fmt::format("request body is {} bytes; the limit is {}", body.size(), max_body_bytes),
        {}};
  }
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return bad_request("request body is empty");
  }
  if (json_depth(body) > kMaxJsonDepth) {
    return bad_request(fmt::format("request body nests deeper than {} levels", kMaxJsonDepth));
  }
  ordered_json j;
  try {
    j = ordered_json::parse(body);
  } catch (const ordered_json::parse_error& e) {
    return bad_request("request body is not valid JSON: " + parse_error_text(e.what()));
  }
  if (!j.is_object()) return bad_request("request body must be a JSON object");
  return j;
}

std::string json_text(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace msi::openai

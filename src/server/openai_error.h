// ApiError and ApiResult<T>: the error tier of the OpenAI-compatible protocol layer. A request that
// fails validation yields an ApiError (an HTTP status, a message naming the offending field, and
// that field as `param`), which error_body() renders in vLLM's shape:
//
//   {"error": {"message": "...", "type": "BadRequestError", "param": "top_p" | null, "code": 400}}
//
// Owns nothing but values; thread-compatible. Functions here never block; they allocate strings.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::openai {

using ordered_json = nlohmann::ordered_json;

struct ApiError {
  int status = 400;     // HTTP status, also the body's "code"
  std::string type;     // empty: derived from status by api_error_type()
  std::string message;  // for a bad field: names it, e.g. "'max_tokens' must be an integer"
  std::string param;    // the offending field's path ("messages[1].role"); empty: null
};

// "BadRequestError" (400), "AuthenticationError" (401), "PermissionDeniedError" (403),
// "NotFoundError" (404), "MethodNotAllowedError" (405), "RequestEntityTooLarge" (413),
// "UnprocessableEntityError" (422), "RateLimitError" (429), "InternalServerError" (500),
// "NotImplementedError" (501), "ServiceUnavailableError" (503), "GatewayTimeoutError" (504);
// any other status: "InternalServerError" for 5xx, "BadRequestError" otherwise.
const char* api_error_type(int status);

// {"error": {"message", "type", "param", "code"}} with the keys in that order. `type` falls back
// to api_error_type(status); an empty `param` is null.
ordered_json error_body(const ApiError& e);

// Shorthands that leave `type` empty (error_body derives it).
ApiError bad_request(std::string message, std::string param = {});  // 400
ApiError not_found(std::string message, std::string param = {});    // 404

// Maps an engine/tokenizer Status to an HTTP error, keeping its message: InvalidArgument and
// OutOfRange → 400, NotFound → 404, Unimplemented → 501, ResourceExhausted and Unavailable → 503,
// DeadlineExceeded → 504, anything else → 500. Requires !s.is_ok().
ApiError api_error_from_status(const Status& s);

// ApiResult<T>: a T or an ApiError (the protocol layer's Result<T>).
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  ApiResult(ApiError e) : v_(std::move(e)) {}   // NOLINT: implicit by design

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  // Requires !is_ok().
  const ApiError& error() const { return std::get<ApiError>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, ApiError> v_;
};

// A validation step that yields nothing: nullopt when valid, else the error.
using ApiCheck = std::optional<ApiError>;

}  // namespace msi::openai

// `MSI_API_ASSIGN_OR_RETURN(auto x, read_x());` declares x or returns the ApiError.
#define MSI_API_ASSIGN_OR_RETURN(lhs, expr) \
  MSI_API_ASSIGN_OR_RETURN_IMPL_(MSI_CONCAT_(msi_api_result_, __LINE__), lhs, expr)
#define MSI_API_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.is_ok()) return tmp.error();                \
  lhs = std::move(tmp).value()

// Returns the ApiError of an ApiCheck from the enclosing function if there is one.
#define MSI_API_RETURN_IF_ERROR(expr)                                  \
  do {                                                                 \
    ::msi::openai::ApiCheck msi_api_check_ = (expr);                   \
    if (msi_api_check_.has_value()) return *std::move(msi_api_check_); \
  } while (0)

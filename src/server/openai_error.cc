#include "server/openai_error.h"

namespace msi::openai {

const char* api_error_type(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 413: return "RequestEntityTooLarge";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 500: return "InternalServerError";
    case 501: return "NotImplementedError";
    case 503: return "ServiceUnavailableError";
    case 504: return "GatewayTimeoutError";
    default: return status >= 500 ? "InternalServerError" : "BadRequestError";
  }
}

ordered_json error_body(const ApiError& e) {
  ordered_json inner = ordered_json::object();
  inner["message"] = e.message;
  inner["type"] = e.type.empty() ? std::string(api_error_type(e.status)) : e.type;
  inner["param"] = e.param.empty() ? ordered_json(nullptr) : ordered_json(e.param);
  inner["code"] = e.status;
  ordered_json body = ordered_json::object();
  body["error"] = std::move(inner);
  return body;
}

ApiError bad_request(std::string message, std::string param) {
  return ApiError{400, {}, std::move(message), std::move(param)};
}

ApiError not_found(std::string message, std::string param) {
  return ApiError{404, {}, std::move(message), std::move(param)};
}

ApiError api_error_from_status(const Status& s) {
  int status = 500;
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange: status = 400; break;
    case StatusCode::kNotFound: status = 404; break;
    case StatusCode::kUnimplemented: status = 501; break;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable: status = 503; break;
    case StatusCode::kDeadlineExceeded: status = 504; break;
    default: status = 500; break;
  }
  return ApiError{status, {}, s.message(), {}};
}

}  // namespace msi::openai

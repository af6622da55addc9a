// Status and Result<T>: the recoverable-error tier (bad input, missing tensor, KV full, peer
// timeout). Invariants use MSI_CHECK from core/check.h instead.
//
// Thread-safety: values; no shared state. Never allocates on the OK path.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace msi {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong (flag, request, file contents)
  kNotFound,         // a file, tensor or key that must exist does not
  kOutOfRange,       // an index or length beyond a limit (vocab, max model length)
  kResourceExhausted,  // KV cache or a buffer is full
  kUnimplemented,    // valid input we do not support (a rope scaling type, a model type)
  kDeadlineExceeded,   // a wait timed out
  kUnavailable,      // a peer died or went away
  kInternal,         // a bug or a failed system call
  kIoError,          // reading or writing a file failed
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: <message>"
  std::string to_string() const;

  // Prefixes context to the message: "loading layer 3: <message>".
  Status with_context(const std::string& context) const {
    if (is_ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status error(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return is_ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace msi

#define MSI_CONCAT_INNER_(a, b) a##b
#define MSI_CONCAT_(a, b) MSI_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define MSI_RETURN_IF_ERROR(expr)               \
  do {                                          \
    ::msi::Status msi_status_ = (expr);         \
    if (!msi_status_.is_ok()) return msi_status_; \
  } while (0)

// `MSI_ASSIGN_OR_RETURN(auto x, make_x());` declares x or returns the error.
#define MSI_ASSIGN_OR_RETURN(lhs, expr) \
  MSI_ASSIGN_OR_RETURN_IMPL_(MSI_CONCAT_(msi_result_, __COUNTER__), lhs, expr)
#define MSI_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()

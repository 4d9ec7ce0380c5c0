// Errors as values: every module boundary returns Status or Result<T>, never throws across it.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace dfm {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad user input: config key, CLI flag, malformed file
  kNotFound,         // a file, model or stream that does not exist
  kIo,               // read/write failure
  kUnsupported,      // valid input we cannot handle (codec, layout)
  kTimeout,
  kCancelled,        // stopped by signal or owner
  kInternal,         // a bug or a library failure we did not expect
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>"
  std::string to_string() const;
  // Prefixes context ("stream \"cam-1\": ") to the message; no-op on ok.
  Status with_context(const std::string& prefix) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status IoError(std::string m) { return Status(Code::kIo, std::move(m)); }
inline Status Unsupported(std::string m) { return Status(Code::kUnsupported, std::move(m)); }
inline Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

// A value or the reason there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.ok()) status_ = Internal("Result constructed from an ok Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace dfm

// Early-return helpers for functions returning Status or Result<T>.
#define DFM_RETURN_IF_ERROR(expr)        \
  do {                                   \
    ::dfm::Status dfm_st_ = (expr);      \
    if (!dfm_st_.ok()) return dfm_st_;   \
  } while (0)

#define DFM_CONCAT_INNER(a, b) a##b
#define DFM_CONCAT(a, b) DFM_CONCAT_INNER(a, b)
#define DFM_ASSIGN_OR_RETURN(lhs, expr) DFM_ASSIGN_OR_RETURN_IMPL(DFM_CONCAT(dfm_res_, __LINE__), lhs, expr)
#define DFM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// Status and Result<T>: fedvar's error values. No exception crosses a fedvar
// header; libtorch / zmq / msgpack exceptions are caught where they are called
// and turned into a Status here.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace fedvar {

// What the caller should do about an error (Abseil's codes, trimmed).
enum class Code {
  kOk = 0,
  kInvalidArgument = 1,     // the input is wrong: fix the input
  kNotFound = 2,            // a file or tensor does not exist
  kDataLoss = 3,            // a file is corrupt or truncated
  kFailedPrecondition = 4,  // the state is wrong: fix it first
  kUnavailable = 5,         // a peer or device is unavailable: retry
  kInternal = 6,            // a bug or a library failure
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) {
    return {Code::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // Same code, message prefixed with where it happened ("loading x: ...").
  Status with_context(const std::string& where) const {
    return ok() ? *this : Status(code_, where + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

// The Status for an exception a library threw where fedvar called it
// (libtorch's c10::Error, std::bad_alloc, ...): kInternal, "where: " and the
// exception's first line (libtorch appends a backtrace after it).
inline Status status_from_exception(const std::string& where, const std::exception& e) {
  std::string what = e.what();
  const auto newline = what.find('\n');
  if (newline != std::string::npos) what.resize(newline);
  return Status::Internal(where + ": " + what);
}

}  // namespace fedvar

// Return early from a function on error.
#define FEDVAR_RETURN_IF_ERROR(expr) \
  do {                               \
    ::fedvar::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

#define FEDVAR_CONCAT_INNER(a, b) a##b
#define FEDVAR_CONCAT(a, b) FEDVAR_CONCAT_INNER(a, b)
#define FEDVAR_ASSIGN_OR_RETURN(lhs, expr) \
  FEDVAR_ASSIGN_OR_RETURN_IMPL(FEDVAR_CONCAT(_res_, __LINE__), lhs, expr)
#define FEDVAR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// Status and Result<T>: how every fallible call in Granary reports failure.
//
// The error codes below are the one list for the whole project. A code exists only where some
// caller reacts to it specifically; everything else is carried by the message, which says what
// happened and what to do about it. Later layers map each code once (S3 error, errno, Python
// exception) next to this list.
//
// Thread-safe: Status and Result are values; distinct objects may be used from distinct threads.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace granary {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound = 1,         // the key, object or file does not exist
  kInvalidArgument = 2,  // the caller passed something malformed; retrying will not help
  kCorruption = 3,       // stored bytes failed their checksum or do not parse; never returned as data
  kIOError = 4,          // the operating system failed an I/O call
  kNoSpace = 5,          // the disk or a configured quota is full
  kUnavailable = 6,      // the component is closed or shutting down; retry elsewhere or later
  kNotSupported = 7,     // the operation or format version is not supported by this build
  kAlreadyExists = 8,    // something that must be new already exists
  kInternal = 9,         // a bug: an invariant did not hold
  // Requests on buckets and objects (S3, the native protocol, Python), each answered differently.
  kPreconditionFailed = 10,  // a condition (If-Match, If-None-Match on a write, ...) did not hold
  kNotModified = 11,         // a read's If-None-Match / If-Modified-Since says the caller is current
  kUnauthenticated = 12,     // unknown access key, wrong or expired signature
  kPermissionDenied = 13,    // authenticated, but not allowed to do this
  kNoSuchBucket = 14,        // the bucket does not exist
  kNoSuchUpload = 15,        // the multipart upload does not exist (completed or aborted)
  kBucketNotEmpty = 16,      // a bucket must be empty to be deleted
  kInvalidRange = 17,        // the requested byte range starts past the object's end
  kBadDigest = 18,           // the bytes do not match the checksum the caller sent (Content-MD5)
  kInvalidPart = 19,         // a multipart completion names a part that is missing or out of order
  kEntityTooSmall = 20,      // a multipart part other than the last is below the minimum size
  kNoSuchPool = 21,          // the KV-cache pool does not exist (never created, or deleted)
  kStaleMap = 22,            // the cluster map the caller routed by is out of date: refresh, retry
};

// Stable, lower-case name of a code ("not_found"), used in logs, JSON and error messages.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message);

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status PreconditionFailed(std::string msg) {
    return {Code::kPreconditionFailed, std::move(msg)};
  }
  static Status NoSuchBucket(std::string msg) { return {Code::kNoSuchBucket, std::move(msg)}; }
  // An IOError (or NoSpace for ENOSPC/EDQUOT) describing errno `err` during `what`.
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  const std::string& message() const;
  // "corruption: record at 3:4096 failed its checksum"
  std::string ToString() const;

  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }

  // The same status with `context` prepended to the message ("segment 3: ...").
  Status WithContext(std::string_view context) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct State {
    Code code;
    std::string message;
  };
  // Null when OK, so that the success path costs one pointer.
  std::shared_ptr<const State> state_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace granary

#define GRANARY_CONCAT_INNER(a, b) a##b
#define GRANARY_CONCAT(a, b) GRANARY_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::granary::Status _st = (expr);               \
    if (!_st.ok()) return _st;                    \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto GRANARY_CONCAT(_res_, __LINE__) = (expr);                      \
  if (!GRANARY_CONCAT(_res_, __LINE__).ok())                          \
    return GRANARY_CONCAT(_res_, __LINE__).status();                  \
  lhs = std::move(GRANARY_CONCAT(_res_, __LINE__)).value()

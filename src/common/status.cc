#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace granary {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not_found";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "io_error";
    case Code::kNoSpace: return "no_space";
    case Code::kUnavailable: return "unavailable";
    case Code::kNotSupported: return "not_supported";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kInternal: return "internal";
    case Code::kPreconditionFailed: return "precondition_failed";
    case Code::kNotModified: return "not_modified";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kPermissionDenied: return "permission_denied";
    case Code::kNoSuchBucket: return "no_such_bucket";
    case Code::kNoSuchUpload: return "no_such_upload";
    case Code::kBucketNotEmpty: return "bucket_not_empty";
    case Code::kInvalidRange: return "invalid_range";
    case Code::kBadDigest: return "bad_digest";
    case Code::kInvalidPart: return "invalid_part";
    case Code::kEntityTooSmall: return "entity_too_small";
    case Code::kNoSuchPool: return "no_such_pool";
    case Code::kStaleMap: return "stale_map";
  }
  return "unknown";
}

Status::Status(Code code, std::string message) {
  if (code != Code::kOk) state_ = std::make_shared<const State>(State{code, std::move(message)});
}

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    return NoSpace(msg + " (free space on the disk or raise the quota)");
  }
  if (err == ENOENT) return NotFound(std::move(msg));
  return IOError(std::move(msg));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code())) + ": " + message();
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code(), std::string(context) + ": " + message());
}

}  // namespace granary

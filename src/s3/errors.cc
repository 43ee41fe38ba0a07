// The error table (errors.h).
#include "s3/errors.h"

#include <atomic>
#include <chrono>
#include <cstdio>

#include "s3/xml.h"

namespace granary::s3 {
namespace {

struct Known {
  std::string_view code;
  unsigned http_status;
};

// Every S3 error the gateway (or the authentication it calls) can name in a message.
constexpr Known kKnown[] = {
    {"AccessDenied", 403},
    {"AuthorizationHeaderMalformed", 400},
    {"AuthorizationQueryParametersError", 400},
    {"BadDigest", 400},
    {"BucketAlreadyExists", 409},
    {"BucketAlreadyOwnedByYou", 409},
    {"BucketNotEmpty", 409},
    {"EntityTooLarge", 400},
    {"EntityTooSmall", 400},
    {"ExpiredToken", 400},
    {"IncompleteBody", 400},
    {"InsufficientStorage", 507},
    {"InternalError", 500},
    {"InvalidAccessKeyId", 403},
    {"InvalidArgument", 400},
    {"InvalidBucketName", 400},
    {"InvalidDigest", 400},
    {"InvalidEncryptionAlgorithmError", 400},
    {"InvalidLocationConstraint", 400},
    {"InvalidObjectState", 403},
    {"InvalidPart", 400},
    {"InvalidPartOrder", 400},
    {"InvalidRange", 416},
    {"InvalidRequest", 400},
    {"InvalidStorageClass", 400},
    {"InvalidToken", 400},
    {"KeyTooLongError", 400},
    {"MalformedXML", 400},
    {"MaxMessageLengthExceeded", 400},
    {"MetadataTooLarge", 400},
    {"MethodNotAllowed", 405},
    {"MissingContentLength", 411},
    {"MissingRequestBodyError", 400},
    {"MissingSecurityHeader", 400},
    {"NoSuchBucket", 404},
    {"NoSuchKey", 404},
    {"NoSuchUpload", 404},
    {"NotImplemented", 501},
    {"NotModified", 304},
    {"PreconditionFailed", 412},
    {"RequestHeaderSectionTooLarge", 400},
    {"RequestTimeTooSkewed", 403},
    {"RequestTimeout", 400},
    {"ServiceUnavailable", 503},
    {"SignatureDoesNotMatch", 403},
    {"SlowDown", 503},
    {"XAmzContentSHA256Mismatch", 400},
};

// The default S3 error of each code.
Known DefaultFor(const Status& status) {
  const std::string& m = status.message();
  switch (status.code()) {
    case Code::kNotFound: return {"NoSuchKey", 404};
    case Code::kNoSuchBucket: return {"NoSuchBucket", 404};
    case Code::kNoSuchUpload: return {"NoSuchUpload", 404};
    case Code::kPreconditionFailed: return {"PreconditionFailed", 412};
    case Code::kNotModified: return {"NotModified", 304};
    case Code::kInvalidRange: return {"InvalidRange", 416};
    case Code::kBadDigest: return {"BadDigest", 400};
    case Code::kInvalidPart:
      if (m.find("order") != std::string::npos) return {"InvalidPartOrder", 400};
      return {"InvalidPart", 400};
    case Code::kEntityTooSmall: return {"EntityTooSmall", 400};
    case Code::kBucketNotEmpty: return {"BucketNotEmpty", 409};
    case Code::kAlreadyExists: return {"BucketAlreadyOwnedByYou", 409};
    case Code::kInvalidArgument:
      if (m.starts_with("bucket name")) return {"InvalidBucketName", 400};
      if (m.starts_with("object key of")) return {"KeyTooLongError", 400};
      return {"InvalidArgument", 400};
    case Code::kUnauthenticated:
    case Code::kPermissionDenied: return {"AccessDenied", 403};
    case Code::kNoSpace: return {"InsufficientStorage", 507};
    case Code::kUnavailable:
    case Code::kStaleMap: return {"ServiceUnavailable", 503};
    case Code::kNotSupported: return {"NotImplemented", 501};
    default: return {"InternalError", 500};
  }
}

// The S3 code named before the first ':' of `message`, if it looks like one.
std::string_view NamedCode(std::string_view message) {
  size_t colon = message.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 64) return {};
  std::string_view name = message.substr(0, colon);
  if (name[0] < 'A' || name[0] > 'Z') return {};
  for (char c : name) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) return {};
  }
  return name;
}

}  // namespace

unsigned HttpStatusOf(std::string_view s3_code) {
  for (const Known& k : kKnown) {
    if (k.code == s3_code) return k.http_status;
  }
  return 0;
}

S3Error ErrorFor(const Status& status) {
  const std::string& message = status.message();
  Known def = DefaultFor(status);
  std::string_view named = NamedCode(message);
  if (!named.empty()) {
    unsigned http = HttpStatusOf(named);
    bool auth = status.code() == Code::kUnauthenticated ||
                status.code() == Code::kPermissionDenied;
    // Authentication names its own errors, known here or not; others only known ones.
    if (http != 0 || auth) {
      std::string_view text = std::string_view(message).substr(named.size() + 1);
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      return {std::string(named), http != 0 ? http : def.http_status, std::string(text)};
    }
  }
  return {std::string(def.code), def.http_status, message};
}

Status S3Status(Code code, std::string_view s3_code, std::string_view text) {
  std::string m(s3_code);
  m += ": ";
  m += text;
  return Status(code, std::move(m));
}

std::string ErrorXml(const S3Error& error, std::string_view resource,
                     std::string_view request_id) {
  XmlWriter w;
  w.Open("Error");
  w.Element("Code", error.code);
  w.Element("Message", error.message);
  w.Element("Resource", resource);
  w.Element("RequestId", request_id);
  w.Close();
  return std::move(w).Finish();
}

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count()) * 0x9E3779B97F4A7C15ull};
  uint64_t v = counter.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llX", static_cast<unsigned long long>(v));
  return std::string(buf, 16);
}

}  // namespace granary::s3

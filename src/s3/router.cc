// Request routing (router.h).
#include "s3/router.h"

namespace granary::s3 {
namespace {

// Subresources S3 has and the gateway does not offer (answered NotImplemented).
constexpr std::string_view kUnsupported[] = {
    "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification",
    "object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock",
    "replication", "requestPayment", "restore", "retention", "select", "tagging", "torrent",
    "versioning", "versions", "website",
};

bool HasUnsupported(const Request& r) {
  for (std::string_view s : kUnsupported) {
    if (r.HasQuery(s)) return true;
  }
  return false;
}

Op RouteBucket(const Request& r) {
  const std::string& m = r.method;
  if (m == "GET") {
    if (r.HasQuery("location")) return Op::kGetBucketLocation;
    if (r.HasQuery("versioning")) return Op::kGetBucketVersioning;
    if (r.HasQuery("uploads")) return Op::kListMultipartUploads;
    if (HasUnsupported(r)) return Op::kNotImplemented;
    return r.QueryOr("list-type") == "2" ? Op::kListObjectsV2 : Op::kListObjectsV1;
  }
  if (m == "HEAD") return Op::kHeadBucket;
  if (m == "PUT") return HasUnsupported(r) ? Op::kNotImplemented : Op::kCreateBucket;
  if (m == "DELETE") return HasUnsupported(r) ? Op::kNotImplemented : Op::kDeleteBucket;
  if (m == "POST") return r.HasQuery("delete") ? Op::kDeleteObjects : Op::kNotImplemented;
  if (m == "OPTIONS" || m == "PATCH") return Op::kNotImplemented;
  return Op::kMethodNotAllowed;
}

Op RouteObject(const Request& r) {
  const std::string& m = r.method;
  bool upload = r.HasQuery("uploadId");
  if (m == "GET") {
    if (upload) return Op::kListParts;
    return HasUnsupported(r) ? Op::kNotImplemented : Op::kGetObject;
  }
  if (m == "HEAD") return HasUnsupported(r) ? Op::kNotImplemented : Op::kHeadObject;
  if (m == "PUT") {
    if (upload && r.HasQuery("partNumber")) {
      return r.Header("x-amz-copy-source") ? Op::kUploadPartCopy : Op::kUploadPart;
    }
    if (upload || HasUnsupported(r)) return Op::kNotImplemented;
    return r.Header("x-amz-copy-source") ? Op::kCopyObject : Op::kPutObject;
  }
  if (m == "DELETE") {
    if (upload) return Op::kAbortMultipartUpload;
    return HasUnsupported(r) ? Op::kNotImplemented : Op::kDeleteObject;
  }
  if (m == "POST") {
    if (r.HasQuery("uploads")) return Op::kCreateMultipartUpload;
    if (upload) return Op::kCompleteMultipartUpload;
    return Op::kNotImplemented;
  }
  if (m == "OPTIONS" || m == "PATCH") return Op::kNotImplemented;
  return Op::kMethodNotAllowed;
}

}  // namespace

Op Route(const Request& request) {
  if (request.bucket.empty()) {
    if (request.method == "GET") return Op::kListBuckets;
    if (request.method == "PUT" || request.method == "POST" || request.method == "DELETE" ||
        request.method == "HEAD" || request.method == "OPTIONS") {
      return Op::kNotImplemented;
    }
    return Op::kMethodNotAllowed;
  }
  return request.key.empty() ? RouteBucket(request) : RouteObject(request);
}

BodyKind BodyKindOf(Op op) {
  switch (op) {
    case Op::kPutObject:
    case Op::kUploadPart: return BodyKind::kStream;
    case Op::kCreateBucket:
    case Op::kDeleteObjects:
    case Op::kCompleteMultipartUpload: return BodyKind::kXml;
    default: return BodyKind::kNone;
  }
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kListBuckets: return "ListBuckets";
    case Op::kCreateBucket: return "CreateBucket";
    case Op::kHeadBucket: return "HeadBucket";
    case Op::kDeleteBucket: return "DeleteBucket";
    case Op::kGetBucketLocation: return "GetBucketLocation";
    case Op::kGetBucketVersioning: return "GetBucketVersioning";
    case Op::kListObjectsV1: return "ListObjects";
    case Op::kListObjectsV2: return "ListObjectsV2";
    case Op::kListMultipartUploads: return "ListMultipartUploads";
    case Op::kDeleteObjects: return "DeleteObjects";
    case Op::kPutObject: return "PutObject";
    case Op::kCopyObject: return "CopyObject";
    case Op::kGetObject: return "GetObject";
    case Op::kHeadObject: return "HeadObject";
    case Op::kDeleteObject: return "DeleteObject";
    case Op::kCreateMultipartUpload: return "CreateMultipartUpload";
    case Op::kUploadPart: return "UploadPart";
    case Op::kUploadPartCopy: return "UploadPartCopy";
    case Op::kCompleteMultipartUpload: return "CompleteMultipartUpload";
    case Op::kAbortMultipartUpload: return "AbortMultipartUpload";
    case Op::kListParts: return "ListParts";
    case Op::kNotImplemented: return "NotImplemented";
    case Op::kMethodNotAllowed: return "MethodNotAllowed";
  }
  return "Unknown";
}

}  // namespace granary::s3

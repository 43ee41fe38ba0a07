// The dispatch from an operation to its handler, and helpers the handlers share.
#include <charconv>

#include "s3/errors.h"
#include "s3/handlers.h"

namespace granary::s3 {
namespace {

Result<Response> Dispatch(Op op, const Request& r, std::string_view body,
                          const HandlerContext& ctx) {
  switch (op) {
    case Op::kListBuckets: return ListBuckets(r, ctx);
    case Op::kCreateBucket: return CreateBucket(r, body, ctx);
    case Op::kHeadBucket: return HeadBucket(r, ctx);
    case Op::kDeleteBucket: return DeleteBucket(r, ctx);
    case Op::kGetBucketLocation: return GetBucketLocation(r, ctx);
    case Op::kGetBucketVersioning: return GetBucketVersioning(r, ctx);
    case Op::kListObjectsV1: return ListObjects(r, false, ctx);
    case Op::kListObjectsV2: return ListObjects(r, true, ctx);
    case Op::kListMultipartUploads: return ListMultipartUploads(r, ctx);
    case Op::kDeleteObjects: return DeleteObjects(r, body, ctx);
    case Op::kCopyObject: return CopyObject(r, ctx);
    case Op::kGetObject: return GetObject(r, ctx);
    case Op::kHeadObject: return HeadObject(r, ctx);
    case Op::kDeleteObject: return DeleteObject(r, ctx);
    case Op::kCreateMultipartUpload: return CreateMultipartUpload(r, ctx);
    case Op::kUploadPartCopy: return UploadPartCopy(r, ctx);
    case Op::kCompleteMultipartUpload: return CompleteMultipartUpload(r, body, ctx);
    case Op::kAbortMultipartUpload: return AbortMultipartUpload(r, ctx);
    case Op::kListParts: return ListParts(r, ctx);
    case Op::kPutObject:
    case Op::kUploadPart:
      return Status::Internal("PutObject and UploadPart stream through an Upload");
    case Op::kNotImplemented:
      return S3Status(Code::kNotSupported, "NotImplemented",
                      "the gateway does not implement this operation (" + r.method + " " +
                          r.path + " with these parameters)");
    case Op::kMethodNotAllowed:
      return S3Status(Code::kNotSupported, "MethodNotAllowed",
                      "the method " + r.method + " is not allowed against this resource");
  }
  return Status::Internal("unknown operation");
}

}  // namespace

Response HandleRequest(Op op, const Request& request, std::string_view body,
                       const HandlerContext& ctx) {
  Result<Response> r = Dispatch(op, request, body, ctx);
  if (!r.ok()) return ErrorResponse(r.status(), request);
  return std::move(r).value();
}

Result<int> PartNumberOf(const Request& r) {
  std::string_view s = r.QueryOr("partNumber");
  int n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 1 ||
      n > kMaxPartNumber) {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    "Part number must be an integer between 1 and " +
                        std::to_string(kMaxPartNumber) + ", inclusive");
  }
  return n;
}

Result<uint32_t> UintQuery(const Request& r, std::string_view name, uint32_t default_value,
                           uint32_t max) {
  const std::string* s = r.Query(name);
  if (s == nullptr) return default_value;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
  if (s->empty() || ec != std::errc() || end != s->data() + s->size() || n < 0) {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    std::string(name) + " must be a non-negative integer, not \"" + *s + "\"");
  }
  return static_cast<uint32_t>(std::min<int64_t>(n, max));
}

void WriteOwner(XmlWriter& w, std::string_view element, const Request& r) {
  w.Open(element);
  w.Element("ID", r.access_key);
  w.Element("DisplayName", r.access_key);
  w.Close();
}

}  // namespace granary::s3

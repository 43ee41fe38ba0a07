// Which S3 operation a request is: method, bucket/key presence and query subresources.
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "s3/request.h"

namespace granary::s3 {

enum class Op {
  kListBuckets,
  kCreateBucket,
  kHeadBucket,
  kDeleteBucket,
  kGetBucketLocation,
  kGetBucketVersioning,
  kListObjectsV1,
  kListObjectsV2,
  kListMultipartUploads,
  kDeleteObjects,
  kPutObject,
  kCopyObject,
  kGetObject,
  kHeadObject,
  kDeleteObject,
  kCreateMultipartUpload,
  kUploadPart,
  kUploadPartCopy,
  kCompleteMultipartUpload,
  kAbortMultipartUpload,
  kListParts,
  kNotImplemented,    // a subresource or form of request the gateway does not offer
  kMethodNotAllowed,  // a method S3 does not have
};

// How the request's body is consumed.
enum class BodyKind {
  kNone,    // no body expected; a small one is read and ignored
  kStream,  // streamed into an ObjectWriter (PutObject, UploadPart)
  kXml,     // read whole (bounded) and parsed as an XML document
};

Op Route(const Request& request);
BodyKind BodyKindOf(Op op);
// "GetObject", for logs.
std::string_view OpName(Op op);

}  // namespace granary::s3

// The S3 operations over ObjectApi, one function per operation, grouped by file:
// bucket_handlers.cc, object_handlers.cc, copy_handlers.cc, list_handlers.cc,
// multipart_handlers.cc, delete_objects.cc. PutObject and UploadPart stream and live in upload.h.
//
// Every handler blocks on ObjectApi calls: run them on a worker thread, never on an I/O thread.
// Errors come back as a Status (errors.h maps it to the S3 error document).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "granary/object_api.h"
#include "s3/request.h"
#include "s3/response.h"
#include "s3/router.h"
#include "s3/xml.h"

namespace granary::s3 {

inline constexpr std::string_view kS3Xmlns = "http://s3.amazonaws.com/doc/2006-03-01/";
// CreateBucket's request header for the copies a cluster keeps of the bucket's data (1 to 5),
// answered by HeadBucket.
inline constexpr std::string_view kReplicasHeader = "x-granary-replicas";

struct HandlerContext {
  ObjectApi* api = nullptr;
  std::string region = "us-east-1";
  // GetObject reads up to this many bytes before answering; the rest is streamed.
  size_t first_piece_bytes = 1 << 20;
};

// Runs `op` (any but the streaming PutObject / UploadPart) with its decoded `body` and returns
// the response, an S3 error document when the operation failed.
Response HandleRequest(Op op, const Request& request, std::string_view body,
                       const HandlerContext& ctx);

// bucket_handlers.cc
[[nodiscard]] Result<Response> ListBuckets(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> CreateBucket(const Request& r, std::string_view body,
                                            const HandlerContext& ctx);
[[nodiscard]] Result<Response> HeadBucket(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> DeleteBucket(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> GetBucketLocation(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> GetBucketVersioning(const Request& r, const HandlerContext& ctx);

// object_handlers.cc
[[nodiscard]] Result<Response> GetObject(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> HeadObject(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> DeleteObject(const Request& r, const HandlerContext& ctx);

// copy_handlers.cc
[[nodiscard]] Result<Response> CopyObject(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> UploadPartCopy(const Request& r, const HandlerContext& ctx);

// list_handlers.cc
[[nodiscard]] Result<Response> ListObjects(const Request& r, bool v2, const HandlerContext& ctx);
[[nodiscard]] Result<Response> ListMultipartUploads(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> ListParts(const Request& r, const HandlerContext& ctx);

// multipart_handlers.cc
[[nodiscard]] Result<Response> CreateMultipartUpload(const Request& r, const HandlerContext& ctx);
[[nodiscard]] Result<Response> CompleteMultipartUpload(const Request& r, std::string_view body,
                                                       const HandlerContext& ctx);
[[nodiscard]] Result<Response> AbortMultipartUpload(const Request& r, const HandlerContext& ctx);

// delete_objects.cc
[[nodiscard]] Result<Response> DeleteObjects(const Request& r, std::string_view body,
                                             const HandlerContext& ctx);

// Helpers shared by the handler files.
// The ?partNumber of an upload request: 1..kMaxPartNumber, else InvalidArgument.
[[nodiscard]] Result<int> PartNumberOf(const Request& r);
// An integer query parameter in [0, max] (default when absent), else InvalidArgument.
[[nodiscard]] Result<uint32_t> UintQuery(const Request& r, std::string_view name,
                                         uint32_t default_value, uint32_t max);
// The Owner / Initiator element's children.
void WriteOwner(XmlWriter& w, std::string_view element, const Request& r);

}  // namespace granary::s3

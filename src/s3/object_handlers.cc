// Object reads and deletes: GetObject, HeadObject, DeleteObject.
#include <algorithm>

#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/object_headers.h"
#include "s3/range.h"

namespace granary::s3 {
namespace {

// No range of an empty object is satisfiable (RFC 9110 section 14.1.1), not even "bytes=0-" or
// "bytes=-5", which the store resolves to the (empty) whole object; S3 answers 416.
Status CheckRangeFits(uint64_t size) {
  if (size > 0) return Status::OK();
  return Status(Code::kInvalidRange, "the object is empty: no byte range of it can be read");
}

void AddContentRange(uint64_t first, uint64_t length, uint64_t size, Response* resp) {
  resp->status = 206;
  resp->AddHeader("Content-Range", "bytes " + std::to_string(first) + "-" +
                                       std::to_string(first + length - 1) + "/" +
                                       std::to_string(size));
}

}  // namespace

Result<Response> GetObject(const Request& r, const HandlerContext& ctx) {
  GetOptions options;
  bool ranged = false;
  if (const std::string* range = r.Header("range")) {
    ASSIGN_OR_RETURN(ranged, ParseRange(*range, &options));
  }
  options.conditions = ConditionsFromHeaders(r, "");
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, ctx.api->Open(r.bucket, r.key, options));
  const ObjectInfo& info = reader->info();
  Response resp;
  AddObjectHeaders(info, r, &resp);
  uint64_t length = reader->length();
  if (ranged) {
    // Every range form, "bytes=0-" (the whole object) included, is answered 206.
    RETURN_IF_ERROR(CheckRangeFits(info.size));
    AddContentRange(reader->offset(), length, info.size, &resp);
  }
  // Read the first piece here, on the worker: a small object is answered from this call alone.
  size_t piece = static_cast<size_t>(std::min<uint64_t>(length, ctx.first_piece_bytes));
  resp.body.resize(piece);
  size_t done = 0;
  while (done < piece) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(std::span<char>(resp.body.data() + done, piece - done)));
    if (n == 0) return Status::Internal("object ended before its stated length");
    done += n;
  }
  resp.content_length = length;
  if (length > piece) resp.reader = std::move(reader);
  return resp;
}

Result<Response> HeadObject(const Request& r, const HandlerContext& ctx) {
  GetOptions options;
  bool ranged = false;
  if (const std::string* range = r.Header("range")) {
    ASSIGN_OR_RETURN(ranged, ParseRange(*range, &options));
  }
  options.conditions = ConditionsFromHeaders(r, "");
  ASSIGN_OR_RETURN(ObjectInfo info, ctx.api->Head(r.bucket, r.key, options));
  Response resp;
  AddObjectHeaders(info, r, &resp);
  resp.omit_body = true;
  resp.content_length = info.size;
  if (ranged) {
    // S3 answers a ranged HEAD like the GET: 206, the range's length and Content-Range.
    RETURN_IF_ERROR(CheckRangeFits(info.size));
    uint64_t offset = 0, length = 0;
    RETURN_IF_ERROR(ResolveRange(options, info.size, &offset, &length));
    AddContentRange(offset, length, info.size, &resp);
    resp.content_length = length;
  }
  return resp;
}

Result<Response> DeleteObject(const Request& r, const HandlerContext& ctx) {
  Status st = ctx.api->Delete(r.bucket, r.key);
  // S3 answers 204 whether or not the key existed.
  if (!st.ok() && !st.IsNotFound()) return st;
  Response resp;
  resp.status = 204;
  return resp;
}

}  // namespace granary::s3

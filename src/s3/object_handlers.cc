// Object reads and deletes: GetObject, HeadObject, DeleteObject.
#include <algorithm>

#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/object_headers.h"
#include "s3/range.h"

namespace granary::s3 {

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
  if (ranged && length > 0) {
    resp.status = 206;
    uint64_t first = reader->offset();
    resp.AddHeader("Content-Range", "bytes " + std::to_string(first) + "-" +
                                        std::to_string(first + length - 1) + "/" +
                                        std::to_string(info.size));
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
  options.conditions = ConditionsFromHeaders(r, "");
  ASSIGN_OR_RETURN(ObjectInfo info, ctx.api->Head(r.bucket, r.key, options));
  Response resp;
  AddObjectHeaders(info, r, &resp);
  resp.omit_body = true;
  resp.content_length = info.size;
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

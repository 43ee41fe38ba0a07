// Server-side copies: CopyObject and UploadPartCopy.
#include <algorithm>
#include <vector>

#include "common/names.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/http_time.h"
#include "s3/object_headers.h"

namespace granary::s3 {
namespace {

struct CopySource {
  std::string bucket;
  std::string key;
};

// x-amz-copy-source: "[/]bucket/key[?versionId=...]", percent-encoded. The version is ignored
// (buckets are not versioned).
Result<CopySource> ParseCopySource(const Request& r) {
  std::string_view raw = r.HeaderOr("x-amz-copy-source");
  size_t q = raw.find('?');
  if (q != std::string_view::npos) raw = raw.substr(0, q);
  std::string s;
  RETURN_IF_ERROR(PercentDecode(raw, false, &s));
  if (!s.empty() && s.front() == '/') s.erase(0, 1);
  size_t slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size()) {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    "x-amz-copy-source must be \"bucket/key\", URL-encoded, not \"" +
                        std::string(r.HeaderOr("x-amz-copy-source")) + "\"");
  }
  return CopySource{s.substr(0, slash), s.substr(slash + 1)};
}

}  // namespace

Result<Response> CopyObject(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(CopySource src, ParseCopySource(r));
  RETURN_IF_ERROR(ValidateObjectKey(r.key));
  std::string_view directive = r.HeaderOr("x-amz-metadata-directive", "COPY");
  if (directive != "COPY" && directive != "REPLACE") {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    "x-amz-metadata-directive must be COPY or REPLACE, not \"" +
                        std::string(directive) + "\"");
  }
  CopyOptions options;
  options.replace_metadata = directive == "REPLACE";
  options.source_conditions = ConditionsFromHeaders(r, "x-amz-copy-source-");
  ASSIGN_OR_RETURN(options.put, PutOptionsFromHeaders(r));
  options.put.content_md5.clear();  // a copy has no body to check
  if (!options.replace_metadata && src.bucket == r.bucket && src.key == r.key) {
    return S3Status(Code::kInvalidArgument, "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to "
                    "itself without changing the object's metadata, storage class, website "
                    "redirect location or encryption attributes.");
  }
  ASSIGN_OR_RETURN(ObjectInfo info, ctx.api->Copy(src.bucket, src.key, r.bucket, r.key, options));
  XmlWriter w;
  w.Open("CopyObjectResult", kS3Xmlns);
  w.Element("LastModified", FormatIso8601(info.mtime_ns));
  w.Element("ETag", QuotedEtag(info.etag));
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> UploadPartCopy(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(CopySource src, ParseCopySource(r));
  ASSIGN_OR_RETURN(int part_number, PartNumberOf(r));
  GetOptions options;
  options.conditions = ConditionsFromHeaders(r, "x-amz-copy-source-");
  if (const std::string* range = r.Header("x-amz-copy-source-range")) {
    // Only "bytes=first-last", both given, as S3 requires.
    std::string_view s = *range;
    uint64_t first = 0, last = 0;
    bool ok = s.starts_with("bytes=");
    size_t dash = s.find('-');
    if (ok && dash != std::string_view::npos) {
      std::string a(s.substr(6, dash - 6)), b(s.substr(dash + 1));
      char* end = nullptr;
      first = std::strtoull(a.c_str(), &end, 10);
      ok = !a.empty() && *end == '\0';
      last = std::strtoull(b.c_str(), &end, 10);
      ok = ok && !b.empty() && *end == '\0' && last >= first;
    } else {
      ok = false;
    }
    if (!ok) {
      return S3Status(Code::kInvalidArgument, "InvalidArgument",
                      "The x-amz-copy-source-range value must be of the form bytes=first-last "
                      "where first and last are the zero-based offsets of the first and last "
                      "bytes to copy");
    }
    options.offset = first;
    options.length = last - first + 1;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader,
                   ctx.api->Open(src.bucket, src.key, options));
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer,
                   ctx.api->UploadPart(r.bucket, r.key, r.QueryOr("uploadId"), part_number, "",
                                       reader->length()));
  std::vector<char> buf(std::min<uint64_t>(reader->length(), 4 << 20) + 1);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(std::span<char>(buf.data(), buf.size())));
    if (n == 0) break;
    RETURN_IF_ERROR(writer->Append(std::string_view(buf.data(), n)));
  }
  ASSIGN_OR_RETURN(ObjectInfo info, writer->Commit());
  XmlWriter w;
  w.Open("CopyPartResult", kS3Xmlns);
  w.Element("LastModified", FormatIso8601(info.mtime_ns));
  w.Element("ETag", QuotedEtag(info.etag));
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

}  // namespace granary::s3

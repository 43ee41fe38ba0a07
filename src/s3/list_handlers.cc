// Listings: ListObjects (V1 and V2), ListMultipartUploads, ListParts.
#include "s3/auth.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/http_time.h"
#include "s3/object_headers.h"

namespace granary::s3 {
namespace {

// The store's continuation token is opaque bytes; clients get it as unpadded base64url so that
// it survives XML and query strings untouched.
std::string EncodeToken(std::string_view token) {
  std::string b = Base64Encode(token);
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b;
}

Result<std::string> DecodeToken(std::string_view token) {
  std::string b(token);
  for (char& c : b) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (b.size() % 4 != 0) b.push_back('=');
  Result<std::string> raw = Base64Decode(b);
  if (!raw.ok() || token.empty()) {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    "The continuation token provided is incorrect");
  }
  return raw;
}

// encoding-type: absent or "url".
Result<bool> UrlEncoding(const Request& r) {
  const std::string* e = r.Query("encoding-type");
  if (e == nullptr) return false;
  if (*e != "url") {
    return S3Status(Code::kInvalidArgument, "InvalidArgument",
                    "Invalid Encoding Method specified in Request: encoding-type must be url");
  }
  return true;
}

}  // namespace

Result<Response> ListObjects(const Request& r, bool v2, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(bool url, UrlEncoding(r));
  auto enc = [url](std::string_view s) { return url ? UriEncode(s, true) : std::string(s); };
  ListOptions options;
  options.prefix = r.QueryOr("prefix");
  options.delimiter = r.QueryOr("delimiter");
  ASSIGN_OR_RETURN(options.max_keys, UintQuery(r, "max-keys", 1000, 1000));
  std::string_view token = r.QueryOr("continuation-token");
  if (v2) {
    options.start_after = r.QueryOr("start-after");
    if (r.HasQuery("continuation-token")) {
      ASSIGN_OR_RETURN(options.continuation_token, DecodeToken(token));
    }
  } else {
    options.start_after = r.QueryOr("marker");
  }
  ListResult result;
  if (options.max_keys > 0) {
    ASSIGN_OR_RETURN(result, ctx.api->List(r.bucket, options));
  } else {
    // Nothing asked for; the bucket must still exist.
    ASSIGN_OR_RETURN(BucketInfo info, ctx.api->HeadBucket(r.bucket));
    (void)info;
  }
  bool fetch_owner = !v2 || r.QueryOr("fetch-owner") == "true";

  XmlWriter w;
  w.Open("ListBucketResult", kS3Xmlns);
  w.Element("Name", r.bucket);
  w.Element("Prefix", enc(options.prefix));
  if (v2) {
    if (r.HasQuery("continuation-token")) w.Element("ContinuationToken", token);
    if (!options.start_after.empty()) w.Element("StartAfter", enc(options.start_after));
    w.Number("KeyCount", result.objects.size() + result.common_prefixes.size());
  } else {
    w.Element("Marker", enc(options.start_after));
  }
  w.Number("MaxKeys", options.max_keys);
  if (!options.delimiter.empty()) w.Element("Delimiter", enc(options.delimiter));
  if (url) w.Element("EncodingType", "url");
  w.Bool("IsTruncated", result.truncated);
  if (result.truncated) {
    if (v2) {
      w.Element("NextContinuationToken", EncodeToken(result.next_continuation_token));
    } else if (!options.delimiter.empty()) {
      // S3 gives NextMarker only with a delimiter; without one the last key is the marker.
      w.Element("NextMarker", enc(result.next_marker));
    }
  }
  for (const ObjectInfo& o : result.objects) {
    w.Open("Contents");
    w.Element("Key", enc(o.key));
    w.Element("LastModified", FormatIso8601(o.mtime_ns));
    w.Element("ETag", QuotedEtag(o.etag));
    w.Number("Size", o.size);
    if (fetch_owner) WriteOwner(w, "Owner", r);
    w.Element("StorageClass", "STANDARD");
    w.Close();
  }
  for (const std::string& p : result.common_prefixes) {
    w.Open("CommonPrefixes");
    w.Element("Prefix", enc(p));
    w.Close();
  }
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> ListMultipartUploads(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(bool url, UrlEncoding(r));
  auto enc = [url](std::string_view s) { return url ? UriEncode(s, true) : std::string(s); };
  ListUploadsOptions options;
  options.prefix = r.QueryOr("prefix");
  options.delimiter = r.QueryOr("delimiter");
  options.key_marker = r.QueryOr("key-marker");
  options.upload_id_marker = r.QueryOr("upload-id-marker");
  ASSIGN_OR_RETURN(options.max_uploads, UintQuery(r, "max-uploads", 1000, 1000));
  ASSIGN_OR_RETURN(ListUploadsResult result, ctx.api->ListMultipartUploads(r.bucket, options));
  XmlWriter w;
  w.Open("ListMultipartUploadsResult", kS3Xmlns);
  w.Element("Bucket", r.bucket);
  w.Element("KeyMarker", enc(options.key_marker));
  w.Element("UploadIdMarker", options.upload_id_marker);
  w.Element("NextKeyMarker", enc(result.next_key_marker));
  w.Element("NextUploadIdMarker", result.next_upload_id_marker);
  if (!options.delimiter.empty()) w.Element("Delimiter", enc(options.delimiter));
  w.Element("Prefix", enc(options.prefix));
  w.Number("MaxUploads", options.max_uploads);
  if (url) w.Element("EncodingType", "url");
  w.Bool("IsTruncated", result.truncated);
  for (const UploadInfo& u : result.uploads) {
    w.Open("Upload");
    w.Element("Key", enc(u.key));
    w.Element("UploadId", u.upload_id);
    WriteOwner(w, "Initiator", r);
    WriteOwner(w, "Owner", r);
    w.Element("StorageClass", "STANDARD");
    w.Element("Initiated", FormatIso8601(u.initiated_ns));
    w.Close();
  }
  for (const std::string& p : result.common_prefixes) {
    w.Open("CommonPrefixes");
    w.Element("Prefix", enc(p));
    w.Close();
  }
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> ListParts(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(uint32_t marker, UintQuery(r, "part-number-marker", 0, kMaxPartNumber));
  ASSIGN_OR_RETURN(uint32_t max_parts, UintQuery(r, "max-parts", 1000, 1000));
  std::string_view upload_id = r.QueryOr("uploadId");
  ASSIGN_OR_RETURN(ListPartsResult result,
                   ctx.api->ListParts(r.bucket, r.key, upload_id, static_cast<int>(marker),
                                      static_cast<int>(max_parts)));
  XmlWriter w;
  w.Open("ListPartsResult", kS3Xmlns);
  w.Element("Bucket", r.bucket);
  w.Element("Key", r.key);
  w.Element("UploadId", upload_id);
  WriteOwner(w, "Initiator", r);
  WriteOwner(w, "Owner", r);
  w.Element("StorageClass", "STANDARD");
  w.Number("PartNumberMarker", marker);
  w.Number("NextPartNumberMarker", static_cast<uint64_t>(result.next_part_number_marker));
  w.Number("MaxParts", max_parts);
  w.Bool("IsTruncated", result.truncated);
  for (const PartInfo& p : result.parts) {
    w.Open("Part");
    w.Number("PartNumber", static_cast<uint64_t>(p.part_number));
    w.Element("LastModified", FormatIso8601(p.mtime_ns));
    w.Element("ETag", QuotedEtag(p.etag));
    w.Number("Size", p.size);
    w.Close();
  }
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

}  // namespace granary::s3

// Multipart uploads: CreateMultipartUpload, CompleteMultipartUpload, AbortMultipartUpload.
// (UploadPart streams: upload.cc; ListParts and ListMultipartUploads: list_handlers.cc.)
#include <charconv>
#include <vector>

#include "common/names.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/object_headers.h"

namespace granary::s3 {
namespace {

Status MalformedXml(std::string_view what) {
  return S3Status(Code::kInvalidArgument, "MalformedXML",
                  "The XML you provided was not well-formed or did not validate against our "
                  "published schema: " +
                      std::string(what));
}

// <CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"..."</ETag></Part>...
Result<std::vector<CompletedPart>> ParsePartList(std::string_view body) {
  ASSIGN_OR_RETURN(XmlNode doc, ParseXml(body));
  if (doc.name != "CompleteMultipartUpload") {
    return MalformedXml("the root element must be CompleteMultipartUpload");
  }
  std::vector<CompletedPart> parts;
  for (const XmlNode& node : doc.children) {
    if (node.name != "Part") continue;
    const XmlNode* number = node.Child("PartNumber");
    const XmlNode* etag = node.Child("ETag");
    if (number == nullptr || etag == nullptr) {
      return MalformedXml("every Part needs a PartNumber and an ETag");
    }
    int n = 0;
    std::string_view s = number->text;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      return MalformedXml("PartNumber \"" + number->text + "\" is not an integer");
    }
    if (n < 1 || n > kMaxPartNumber) {
      return S3Status(Code::kInvalidArgument, "InvalidArgument",
                      "Part number must be an integer between 1 and " +
                          std::to_string(kMaxPartNumber) + ", inclusive");
    }
    if (!parts.empty() && n <= parts.back().part_number) {
      return S3Status(Code::kInvalidPart, "InvalidPartOrder",
                      "The list of parts was not in ascending order. The parts list must be "
                      "specified in order of part number.");
    }
    parts.push_back({n, etag->text});
  }
  if (parts.empty()) return MalformedXml("the part list is empty");
  return parts;
}

}  // namespace

Result<Response> CreateMultipartUpload(const Request& r, const HandlerContext& ctx) {
  RETURN_IF_ERROR(ValidateObjectKey(r.key));
  ASSIGN_OR_RETURN(PutOptions options, PutOptionsFromHeaders(r));
  options.content_md5.clear();
  ASSIGN_OR_RETURN(std::string upload_id,
                   ctx.api->CreateMultipartUpload(r.bucket, r.key, std::move(options)));
  XmlWriter w;
  w.Open("InitiateMultipartUploadResult", kS3Xmlns);
  w.Element("Bucket", r.bucket);
  w.Element("Key", r.key);
  w.Element("UploadId", upload_id);
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> CompleteMultipartUpload(const Request& r, std::string_view body,
                                         const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<CompletedPart> parts, ParsePartList(body));
  Conditions conditions;
  conditions.if_match = std::string(r.HeaderOr("if-match"));
  conditions.if_none_match = std::string(r.HeaderOr("if-none-match"));
  ASSIGN_OR_RETURN(ObjectInfo info,
                   ctx.api->CompleteMultipartUpload(r.bucket, r.key, r.QueryOr("uploadId"),
                                                    parts, conditions));
  XmlWriter w;
  w.Open("CompleteMultipartUploadResult", kS3Xmlns);
  std::string location = "http://";
  location += r.HeaderOr("host", "localhost");
  location += r.Resource();
  w.Element("Location", location);
  w.Element("Bucket", r.bucket);
  w.Element("Key", r.key);
  w.Element("ETag", QuotedEtag(info.etag));
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> AbortMultipartUpload(const Request& r, const HandlerContext& ctx) {
  RETURN_IF_ERROR(ctx.api->AbortMultipartUpload(r.bucket, r.key, r.QueryOr("uploadId")));
  Response resp;
  resp.status = 204;
  return resp;
}

}  // namespace granary::s3

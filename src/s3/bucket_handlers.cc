// Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
// GetBucketVersioning.
#include <charconv>

#include "common/names.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/http_time.h"

namespace granary::s3 {

Result<Response> ListBuckets(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, ctx.api->ListBuckets());
  XmlWriter w;
  w.Open("ListAllMyBucketsResult", kS3Xmlns);
  WriteOwner(w, "Owner", r);
  w.Open("Buckets");
  for (const BucketInfo& b : buckets) {
    w.Open("Bucket");
    w.Element("Name", b.name);
    w.Element("CreationDate", FormatIso8601(b.created_ns));
    w.Close();
  }
  w.Close();
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> CreateBucket(const Request& r, std::string_view body, const HandlerContext& ctx) {
  RETURN_IF_ERROR(ValidateBucketName(r.bucket));
  bool all_space = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (!all_space) {
    ASSIGN_OR_RETURN(XmlNode doc, ParseXml(body));
    if (doc.name != "CreateBucketConfiguration") {
      return S3Status(Code::kInvalidArgument, "MalformedXML",
                      "the body must be a CreateBucketConfiguration document, not <" + doc.name +
                          ">");
    }
    std::string_view location = doc.ChildText("LocationConstraint");
    if (!location.empty() && location != ctx.region &&
        !(ctx.region == "us-east-1" && location == "US")) {
      return S3Status(Code::kInvalidArgument, "InvalidLocationConstraint",
                      "the location constraint \"" + std::string(location) +
                          "\" is not this gateway's region \"" + ctx.region + "\"");
    }
  }
  BucketOptions options;
  if (const std::string* replicas = r.Header(kReplicasHeader)) {
    auto [end, ec] = std::from_chars(replicas->data(), replicas->data() + replicas->size(),
                                     options.replicas);
    if (replicas->empty() || ec != std::errc() || end != replicas->data() + replicas->size() ||
        options.replicas < 1 || options.replicas > kMaxReplicas) {
      return S3Status(Code::kInvalidArgument, "InvalidArgument",
                      std::string(kReplicasHeader) + " must be 1 to " +
                          std::to_string(kMaxReplicas) + ", not \"" + *replicas + "\"");
    }
  }
  RETURN_IF_ERROR(ctx.api->CreateBucket(r.bucket, options));
  Response resp;
  resp.AddHeader("Location", "/" + r.bucket);
  return resp;
}

Result<Response> HeadBucket(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(BucketInfo info, ctx.api->HeadBucket(r.bucket));
  Response resp;
  resp.AddHeader("x-amz-bucket-region", ctx.region);
  if (info.replicas != 0) resp.AddHeader(std::string(kReplicasHeader), std::to_string(info.replicas));
  resp.omit_body = true;
  return resp;
}

Result<Response> DeleteBucket(const Request& r, const HandlerContext& ctx) {
  RETURN_IF_ERROR(ctx.api->DeleteBucket(r.bucket));
  Response resp;
  resp.status = 204;
  return resp;
}

Result<Response> GetBucketLocation(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(BucketInfo info, ctx.api->HeadBucket(r.bucket));
  (void)info;
  XmlWriter w;
  w.Open("LocationConstraint", kS3Xmlns);
  // S3 answers an empty constraint for us-east-1, and clients expect that.
  if (ctx.region != "us-east-1") w.Text(ctx.region);
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

Result<Response> GetBucketVersioning(const Request& r, const HandlerContext& ctx) {
  ASSIGN_OR_RETURN(BucketInfo info, ctx.api->HeadBucket(r.bucket));
  (void)info;
  XmlWriter w;
  w.Open("VersioningConfiguration", kS3Xmlns);
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

}  // namespace granary::s3

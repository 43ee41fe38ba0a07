// DeleteObjects (POST /bucket?delete): up to 1000 keys in one request, per-key results.
#include <vector>

#include "common/names.h"
#include "s3/auth.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/object_headers.h"

namespace granary::s3 {
namespace {

constexpr size_t kMaxDeleteKeys = 1000;
constexpr std::string_view kChecksums[] = {"crc32", "crc32c", "crc64nvme", "sha1", "sha256"};

Status MalformedXml(std::string_view what) {
  return S3Status(Code::kInvalidArgument, "MalformedXML",
                  "The XML you provided was not well-formed or did not validate against our "
                  "published schema: " +
                      std::string(what));
}

// S3 requires Content-MD5 or an x-amz-checksum-* header on DeleteObjects, and checks it.
Status CheckIntegrity(const Request& r, std::string_view body) {
  if (const std::string* md5 = r.Header("content-md5")) {
    RETURN_IF_ERROR(CheckContentMd5(*md5));
    Md5 digest;
    digest.Update(body);
    if (digest.Base64Digest() != *md5) {
      return S3Status(Code::kBadDigest, "BadDigest",
                      "The Content-MD5 you specified did not match what we received.");
    }
    return Status::OK();
  }
  for (std::string_view algorithm : kChecksums) {
    std::string name = "x-amz-checksum-" + std::string(algorithm);
    const std::string* expected = r.Header(name);
    if (expected == nullptr) continue;
    ASSIGN_OR_RETURN(std::string actual, ChecksumBase64(algorithm, body));
    if (actual != *expected) {
      return S3Status(Code::kBadDigest, "BadDigest",
                      "The " + name + " you specified did not match the calculated checksum.");
    }
    return Status::OK();
  }
  return S3Status(Code::kInvalidArgument, "InvalidRequest",
                  "Missing required header for this request: Content-MD5 (or an "
                  "x-amz-checksum-* header)");
}

}  // namespace

Result<Response> DeleteObjects(const Request& r, std::string_view body, const HandlerContext& ctx) {
  RETURN_IF_ERROR(CheckIntegrity(r, body));
  XmlLimits limits;
  limits.max_elements = 4 * kMaxDeleteKeys + 16;
  ASSIGN_OR_RETURN(XmlNode doc, ParseXml(body, limits));
  if (doc.name != "Delete") return MalformedXml("the root element must be Delete");
  bool quiet = doc.ChildText("Quiet") == "true";
  std::vector<std::string> keys;
  for (const XmlNode& node : doc.children) {
    if (node.name == "Quiet") continue;
    if (node.name != "Object") return MalformedXml("unexpected element <" + node.name + ">");
    const XmlNode* key = node.Child("Key");
    if (key == nullptr) return MalformedXml("every Object needs a Key");
    keys.push_back(key->text);
  }
  if (keys.empty()) return MalformedXml("no Object to delete");
  if (keys.size() > kMaxDeleteKeys) {
    return MalformedXml("at most " + std::to_string(kMaxDeleteKeys) +
                        " objects can be deleted in one request, not " +
                        std::to_string(keys.size()));
  }
  // A missing bucket fails the whole request, as in S3.
  ASSIGN_OR_RETURN(BucketInfo bucket, ctx.api->HeadBucket(r.bucket));
  (void)bucket;

  // Keys that are not valid keys cannot exist; they get a per-key error, the rest are deleted.
  std::vector<Status> results(keys.size());
  std::vector<std::string> valid;
  std::vector<size_t> valid_index;
  for (size_t i = 0; i < keys.size(); ++i) {
    Status st = ValidateObjectKey(keys[i]);
    if (st.ok()) {
      valid.push_back(keys[i]);
      valid_index.push_back(i);
    } else {
      results[i] = st;
    }
  }
  if (!valid.empty()) {
    std::vector<Status> deleted = ctx.api->DeleteMany(r.bucket, valid);
    for (size_t j = 0; j < valid.size(); ++j) {
      results[valid_index[j]] =
          j < deleted.size() ? deleted[j] : Status::Internal("no result for this key");
    }
  }

  XmlWriter w;
  w.Open("DeleteResult", kS3Xmlns);
  for (size_t i = 0; i < keys.size(); ++i) {
    const Status& st = results[i];
    if (st.ok() || st.IsNotFound()) {
      if (quiet) continue;
      w.Open("Deleted");
      w.Element("Key", keys[i]);
      w.Close();
    } else {
      S3Error e = ErrorFor(st);
      w.Open("Error");
      w.Element("Key", keys[i]);
      w.Element("Code", e.code);
      w.Element("Message", e.message);
      w.Close();
    }
  }
  w.Close();
  return XmlResponse(std::move(w).Finish());
}

}  // namespace granary::s3

// Range parsing, error mapping, addressing, routing and timestamps.
#include <gtest/gtest.h>

#include "s3/errors.h"
#include "s3/http_time.h"
#include "s3/range.h"
#include "s3/auth.h"
#include "s3/request.h"
#include "s3/router.h"

namespace granary::s3 {
namespace {

TEST(RangeTest, Forms) {
  GetOptions o;
  Result<bool> r = ParseRange("bytes=2-5", &o);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(o.offset, 2u);
  EXPECT_EQ(o.length, 4u);
  o = {};
  r = ParseRange("bytes=7-", &o);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(o.offset, 7u);
  EXPECT_EQ(o.length, UINT64_MAX);
  o = {};
  r = ParseRange("bytes=-3", &o);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(o.suffix_length, 3u);
  // Whole object: several ranges, other units, garbage, reversed.
  for (const char* whole : {"bytes=0-1,3-4", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes=",
                            "bytes=1", "", "bytes=--1"}) {
    o = {};
    r = ParseRange(whole, &o);
    ASSERT_TRUE(r.ok()) << whole;
    EXPECT_FALSE(*r) << whole;
  }
  r = ParseRange("bytes=-0", &o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidRange);
}

TEST(ErrorsTest, TableMapsEachCode) {
  struct Case {
    Status status;
    const char* code;
    unsigned http;
  } cases[] = {
      {Status::NoSuchBucket("x"), "NoSuchBucket", 404},
      {Status::NotFound("x"), "NoSuchKey", 404},
      {Status(Code::kNoSuchUpload, "x"), "NoSuchUpload", 404},
      {Status::PreconditionFailed("x"), "PreconditionFailed", 412},
      {Status(Code::kNotModified, "x"), "NotModified", 304},
      {Status(Code::kInvalidRange, "x"), "InvalidRange", 416},
      {Status(Code::kBadDigest, "x"), "BadDigest", 400},
      {Status(Code::kInvalidPart, "x"), "InvalidPart", 400},
      {Status(Code::kInvalidPart, "parts not in ascending order"), "InvalidPartOrder", 400},
      {Status(Code::kEntityTooSmall, "x"), "EntityTooSmall", 400},
      {Status(Code::kBucketNotEmpty, "x"), "BucketNotEmpty", 409},
      {Status::AlreadyExists("x"), "BucketAlreadyOwnedByYou", 409},
      {Status::InvalidArgument("x"), "InvalidArgument", 400},
      {Status::InvalidArgument("bucket name \"A\" is invalid"), "InvalidBucketName", 400},
      {Status::InvalidArgument("object key of 2000 bytes"), "KeyTooLongError", 400},
      {Status::InvalidArgument("MalformedXML: bad"), "MalformedXML", 400},
      {Status(Code::kUnauthenticated, "SignatureDoesNotMatch: no"), "SignatureDoesNotMatch", 403},
      {Status(Code::kUnauthenticated, "InvalidAccessKeyId: no"), "InvalidAccessKeyId", 403},
      {Status(Code::kPermissionDenied, "AccessDenied: anonymous"), "AccessDenied", 403},
      {Status(Code::kUnauthenticated, "SomethingNew: x"), "SomethingNew", 403},
      {Status(Code::kBadDigest, "XAmzContentSHA256Mismatch: x"), "XAmzContentSHA256Mismatch", 400},
      {Status::NoSpace("x"), "InsufficientStorage", 507},
      {Status::Unavailable("x"), "ServiceUnavailable", 503},
      {Status::IOError("disk: fail"), "InternalError", 500},
      {Status::Corruption("x"), "InternalError", 500},
  };
  for (const Case& c : cases) {
    S3Error e = ErrorFor(c.status);
    EXPECT_EQ(e.code, c.code) << c.status.ToString();
    EXPECT_EQ(e.http_status, c.http) << c.status.ToString();
  }
  S3Error e = ErrorFor(Status(Code::kUnauthenticated, "SignatureDoesNotMatch: the text"));
  EXPECT_EQ(e.message, "the text");
  std::string xml = ErrorXml(e, "/b/k", "RID");
  EXPECT_NE(xml.find("<Error><Code>SignatureDoesNotMatch</Code><Message>the text</Message>"
                     "<Resource>/b/k</Resource><RequestId>RID</RequestId></Error>"),
            std::string::npos);
  EXPECT_NE(NewRequestId(), NewRequestId());
}

Request Resolve(std::string host, std::string target) {
  Request r;
  r.target = std::move(target);
  Status st = ResolveTarget(host, {"localhost", "s3.example.com"}, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

TEST(RequestTest, PathAndVirtualHostAddressing) {
  Request r = Resolve("127.0.0.1:9000", "/bucket/dir/a%20b%2Bc+d%2F%C3%A9?list-type=2&prefix=a+b");
  EXPECT_EQ(r.bucket, "bucket");
  EXPECT_EQ(r.key, "dir/a b+c+d/\xC3\xA9");
  EXPECT_EQ(r.QueryOr("list-type"), "2");
  EXPECT_EQ(r.QueryOr("prefix"), "a b");
  r = Resolve("localhost", "/bucket");
  EXPECT_EQ(r.bucket, "bucket");
  EXPECT_EQ(r.key, "");
  r = Resolve("my.bucket.s3.example.com:443", "/k/x?uploads");
  EXPECT_EQ(r.bucket, "my.bucket");
  EXPECT_EQ(r.key, "k/x");
  EXPECT_TRUE(r.HasQuery("uploads"));
  r = Resolve("localhost:9000", "/");
  EXPECT_EQ(r.bucket, "");
  r = Resolve("x", "http://host:1/b/k");
  EXPECT_EQ(r.bucket, "b");
  EXPECT_EQ(r.key, "k");

  Request bad;
  bad.target = "/b/%zz";
  EXPECT_FALSE(ResolveTarget("x", {}, &bad).ok());
  bad.target = "no-slash";
  EXPECT_FALSE(ResolveTarget("x", {}, &bad).ok());
  EXPECT_EQ(UriEncode("a b/c~", true), "a%20b/c~");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
}

TEST(RouterTest, Operations) {
  auto op = [](std::string method, std::string target,
               std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(headers);
    EXPECT_TRUE(ResolveTarget("h", {}, &r).ok());
    return Route(r);
  };
  EXPECT_EQ(op("GET", "/"), Op::kListBuckets);
  EXPECT_EQ(op("PUT", "/b"), Op::kCreateBucket);
  EXPECT_EQ(op("GET", "/b"), Op::kListObjectsV1);
  EXPECT_EQ(op("GET", "/b?list-type=2"), Op::kListObjectsV2);
  EXPECT_EQ(op("GET", "/b?location"), Op::kGetBucketLocation);
  EXPECT_EQ(op("GET", "/b?uploads"), Op::kListMultipartUploads);
  EXPECT_EQ(op("POST", "/b?delete"), Op::kDeleteObjects);
  EXPECT_EQ(op("GET", "/b?acl"), Op::kNotImplemented);
  EXPECT_EQ(op("PUT", "/b/k"), Op::kPutObject);
  EXPECT_EQ(op("PUT", "/b/k", {{"x-amz-copy-source", "/a/b"}}), Op::kCopyObject);
  EXPECT_EQ(op("PUT", "/b/k?partNumber=1&uploadId=u"), Op::kUploadPart);
  EXPECT_EQ(op("PUT", "/b/k?partNumber=1&uploadId=u", {{"x-amz-copy-source", "/a/b"}}),
            Op::kUploadPartCopy);
  EXPECT_EQ(op("POST", "/b/k?uploads"), Op::kCreateMultipartUpload);
  EXPECT_EQ(op("POST", "/b/k?uploadId=u"), Op::kCompleteMultipartUpload);
  EXPECT_EQ(op("DELETE", "/b/k?uploadId=u"), Op::kAbortMultipartUpload);
  EXPECT_EQ(op("GET", "/b/k?uploadId=u"), Op::kListParts);
  EXPECT_EQ(op("GET", "/b/k?x-id=GetObject"), Op::kGetObject);
  EXPECT_EQ(op("HEAD", "/b/k"), Op::kHeadObject);
  EXPECT_EQ(op("DELETE", "/b/k"), Op::kDeleteObject);
  EXPECT_EQ(op("BREW", "/b/k"), Op::kMethodNotAllowed);
}

TEST(HttpTimeTest, FormatsAndParses) {
  int64_t t = 1255369830123000000;  // 2009-10-12T17:50:30.123Z
  EXPECT_EQ(FormatIso8601(t), "2009-10-12T17:50:30.123Z");
  EXPECT_EQ(FormatRfc1123(t), "Mon, 12 Oct 2009 17:50:30 GMT");
  int64_t secs = 1255369830ll * 1000000000;
  for (const char* s : {"Mon, 12 Oct 2009 17:50:30 GMT", "Monday, 12-Oct-09 17:50:30 GMT",
                        "Mon Oct 12 17:50:30 2009"}) {
    Result<int64_t> p = ParseHttpDate(s);
    ASSERT_TRUE(p.ok()) << s;
    EXPECT_EQ(*p, secs) << s;
  }
  EXPECT_FALSE(ParseHttpDate("yesterday").ok());
  EXPECT_FALSE(ParseHttpDate("Mon, 12 Foo 2009 17:50:30 GMT").ok());
}

}  // namespace
}  // namespace granary::s3

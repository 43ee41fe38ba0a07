// End-to-end tests of object operations: put/get/head/delete, metadata, digests, ranges,
// conditions, copies, streaming bodies.
#include "s3/auth.h"
#include "s3/gateway_test_util.h"

namespace granary::s3::testing {
namespace {

std::string Md5Base64(const std::string& data) {
  Md5 md5;
  md5.Update(data);
  return md5.Base64Digest();
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

TEST_F(GatewayTest, PutGetHeadDeleteWithMetadata) {
  MakeBucket("obj");
  HttpResult r = client_->Send("PUT", "/obj/doc.txt", "hello world",
                               {{"content-type", "text/plain"},
                                {"x-amz-meta-color", "blue"},
                                {"cache-control", "max-age=60"},
                                {"content-disposition", "attachment"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.Header("etag"), "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");

  r = client_->Send("GET", "/obj/doc.txt");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.Header("content-type"), "text/plain");
  EXPECT_EQ(r.Header("x-amz-meta-color"), "blue");
  EXPECT_EQ(r.Header("cache-control"), "max-age=60");
  EXPECT_EQ(r.Header("content-disposition"), "attachment");
  EXPECT_FALSE(r.Header("last-modified").empty());

  r = client_->Send("GET", "/obj/doc.txt?response-content-type=application%2Fjson"
                           "&response-cache-control=no-cache");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("cache-control"), "no-cache");

  r = client_->Send("HEAD", "/obj/doc.txt");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.Header("content-length"), "11");
  EXPECT_TRUE(r.body.empty());

  EXPECT_EQ(client_->Send("DELETE", "/obj/doc.txt").status, 204u);
  EXPECT_EQ(client_->Send("DELETE", "/obj/doc.txt").status, 204u);
  r = client_->Send("GET", "/obj/doc.txt");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.Xml("Code"), "NoSuchKey");
  EXPECT_EQ(r.Xml("Resource"), "/obj/doc.txt");
  EXPECT_EQ(client_->Send("HEAD", "/obj/doc.txt").status, 404u);
}

TEST_F(GatewayTest, MetadataTooLarge) {
  MakeBucket("meta");
  HttpResult r = client_->Send("PUT", "/meta/k", "x", {{"x-amz-meta-big", std::string(2100, 'm')}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "MetadataTooLarge");
}

TEST_F(GatewayTest, ContentMd5IsChecked) {
  MakeBucket("md5");
  HttpResult r = client_->Send("PUT", "/md5/ok", "data", {{"content-md5", Md5Base64("data")}});
  EXPECT_EQ(r.status, 200u) << r.body;
  r = client_->Send("PUT", "/md5/bad", "data", {{"content-md5", Md5Base64("other")}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "BadDigest");
  r = client_->Send("PUT", "/md5/bad", "data", {{"content-md5", "not-base64!"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "InvalidDigest");
  EXPECT_EQ(api_.object_count("md5"), 1u);
}

TEST_F(GatewayTest, ContentSha256MismatchStoresNothing) {
  MakeBucket("sha");
  // Sign for one body, send another of the same length.
  std::vector<std::pair<std::string, std::string>> headers = {{"host", client_->host()}};
  SignOptions options;
  options.access_key = kAccessKey;
  options.secret_key = kSecretKey;
  options.now_unix_s = time(nullptr);
  options.payload_sha256 = Sha256Hex("aaaa");
  Result<SignedRequest> s = SignRequest("PUT", "/sha/k", &headers, options);
  ASSERT_TRUE(s.ok());
  headers.emplace_back("authorization", s->authorization);
  std::string raw = "PUT /sha/k HTTP/1.1\r\ncontent-length: 4\r\n";
  for (auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
  HttpResult r = client_->Raw(raw + "\r\nbbbb");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "XAmzContentSHA256Mismatch");
  EXPECT_EQ(api_.object_count("sha"), 0u);
  EXPECT_TRUE(api_.WaitNoOpenWriters(10000));
}

TEST_F(GatewayTest, StreamingSignedUpload) {
  MakeBucket("chunked");
  std::string body = Pattern(300 << 10);
  HttpResult r = client_->Send("PUT", "/chunked/obj", body, {{"content-type", "app/x"}},
                               Payload::kStreaming);
  ASSERT_EQ(r.status, 200u) << r.body;
  Result<std::string> got = api_.Get("chunked", "obj");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == body);
  Result<ObjectInfo> info = api_.Head("chunked", "obj", {});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->headers.count("content-encoding"), 0u);  // aws-chunked is not stored
}

TEST_F(GatewayTest, LargeBodiesStreamBothWays) {
  MakeBucket("large");
  std::string body = Pattern(24 << 20);
  HttpResult r = client_->Send("PUT", "/large/blob", body, {}, Payload::kUnsigned);
  ASSERT_EQ(r.status, 200u) << r.body;
  r = client_->Send("GET", "/large/blob");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
  r = client_->Send("GET", "/large/blob", "", {{"range", "bytes=5000000-20000000"}});
  ASSERT_EQ(r.status, 206u);
  EXPECT_TRUE(r.body == body.substr(5000000, 15000001));
}

TEST_F(GatewayTest, TruncatedUploadStoresNothing) {
  MakeBucket("trunc");
  std::vector<std::pair<std::string, std::string>> headers = {{"host", client_->host()}};
  SignOptions options;
  options.access_key = kAccessKey;
  options.secret_key = kSecretKey;
  options.now_unix_s = time(nullptr);
  Result<SignedRequest> s = SignRequest("PUT", "/trunc/k", &headers, options);
  ASSERT_TRUE(s.ok());
  headers.emplace_back("authorization", s->authorization);
  std::string raw = "PUT /trunc/k HTTP/1.1\r\ncontent-length: 3000000\r\n";
  for (auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
  client_->WriteAndClose(raw + "\r\n" + std::string(1500000, 'x'));
  // The gateway must abandon the writer once it sees the connection close.
  EXPECT_TRUE(api_.WaitNoOpenWriters(10000));
  S3Client fresh(gateway_->port());
  EXPECT_EQ(fresh.Send("GET", "/trunc/k").status, 404u);
  EXPECT_EQ(api_.object_count("trunc"), 0u);
}

TEST_F(GatewayTest, Ranges) {
  MakeBucket("range");
  ASSERT_EQ(client_->Send("PUT", "/range/r", "0123456789").status, 200u);
  HttpResult r = client_->Send("GET", "/range/r", "", {{"range", "bytes=2-5"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, "2345");
  EXPECT_EQ(r.Header("content-range"), "bytes 2-5/10");
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=-3"}});
  EXPECT_EQ(r.body, "789");
  EXPECT_EQ(r.Header("content-range"), "bytes 7-9/10");
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=8-"}});
  EXPECT_EQ(r.body, "89");
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=5-100"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, "56789");
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=10-"}});
  EXPECT_EQ(r.status, 416u);
  EXPECT_EQ(r.Xml("Code"), "InvalidRange");
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=0-1,4-5"}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "0123456789");
  // A range covering the whole object is still a range: 206 with Content-Range, as S3 answers.
  for (const char* whole : {"bytes=0-", "bytes=0-9", "bytes=-10", "bytes=-2000", "bytes=0-2000"}) {
    r = client_->Send("GET", "/range/r", "", {{"range", whole}});
    EXPECT_EQ(r.status, 206u) << whole;
    EXPECT_EQ(r.body, "0123456789") << whole;
    EXPECT_EQ(r.Header("content-range"), "bytes 0-9/10") << whole;
  }
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=9-9"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, "9");
  EXPECT_EQ(r.Header("content-range"), "bytes 9-9/10");
  // What is not a valid byte range is ignored (RFC 9110 section 14.2): the whole object.
  for (const char* invalid : {"bytes=5-2", "bytes=x-3", "items=0-1", "bytes=", "bytes=3"}) {
    r = client_->Send("GET", "/range/r", "", {{"range", invalid}});
    EXPECT_EQ(r.status, 200u) << invalid;
    EXPECT_EQ(r.body, "0123456789") << invalid;
    EXPECT_EQ(r.Header("content-range"), "") << invalid;
  }
  r = client_->Send("GET", "/range/r", "", {{"range", "bytes=-0"}});
  EXPECT_EQ(r.status, 416u);
  // HEAD takes the range as GET does.
  r = client_->Send("HEAD", "/range/r", "", {{"range", "bytes=2-5"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.Header("content-length"), "4");
  EXPECT_EQ(r.Header("content-range"), "bytes 2-5/10");
  r = client_->Send("HEAD", "/range/r", "", {{"range", "bytes=0-"}});
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.Header("content-length"), "10");
  EXPECT_EQ(r.Header("content-range"), "bytes 0-9/10");
  r = client_->Send("HEAD", "/range/r", "", {{"range", "bytes=-3"}});
  EXPECT_EQ(r.Header("content-range"), "bytes 7-9/10");
  r = client_->Send("HEAD", "/range/r", "", {{"range", "bytes=10-"}});
  EXPECT_EQ(r.status, 416u);
  r = client_->Send("HEAD", "/range/r");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.Header("content-length"), "10");
  // No range of an empty object is satisfiable.
  ASSERT_EQ(client_->Send("PUT", "/range/empty", "").status, 200u);
  for (const char* range : {"bytes=0-", "bytes=0-0", "bytes=-5"}) {
    r = client_->Send("GET", "/range/empty", "", {{"range", range}});
    EXPECT_EQ(r.status, 416u) << range;
    EXPECT_EQ(r.Xml("Code"), "InvalidRange") << range;
    r = client_->Send("HEAD", "/range/empty", "", {{"range", range}});
    EXPECT_EQ(r.status, 416u) << range;
  }
  r = client_->Send("GET", "/range/empty");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "");
}

TEST_F(GatewayTest, ConditionalRequests) {
  MakeBucket("cond");
  HttpResult put = client_->Send("PUT", "/cond/c", "v1");
  std::string etag = put.Header("etag");
  HttpResult r = client_->Send("GET", "/cond/c", "", {{"if-none-match", etag}});
  EXPECT_EQ(r.status, 304u);
  EXPECT_TRUE(r.body.empty());
  r = client_->Send("GET", "/cond/c", "", {{"if-match", "\"0000\""}});
  EXPECT_EQ(r.status, 412u);
  EXPECT_EQ(r.Xml("Code"), "PreconditionFailed");
  r = client_->Send("HEAD", "/cond/c", "", {{"if-match", "\"0000\""}});
  EXPECT_EQ(r.status, 412u);
  r = client_->Send("GET", "/cond/c", "", {{"if-match", etag}});
  EXPECT_EQ(r.status, 200u);
  r = client_->Send("GET", "/cond/c", "", {{"if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"}});
  EXPECT_EQ(r.status, 304u);
  r = client_->Send("GET", "/cond/c", "",
                    {{"if-unmodified-since", "Thu, 01 Jan 1998 00:00:00 GMT"}});
  EXPECT_EQ(r.status, 412u);
  // Writes.
  r = client_->Send("PUT", "/cond/c", "v2", {{"if-none-match", "*"}});
  EXPECT_EQ(r.status, 412u);
  r = client_->Send("PUT", "/cond/new", "v2", {{"if-none-match", "*"}});
  EXPECT_EQ(r.status, 200u);
  r = client_->Send("PUT", "/cond/c", "v3", {{"if-match", "\"ffff\""}});
  EXPECT_EQ(r.status, 412u);
  r = client_->Send("PUT", "/cond/c", "v3", {{"if-match", etag}});
  EXPECT_EQ(r.status, 200u);
}

TEST_F(GatewayTest, CopyObject) {
  MakeBucket("src");
  MakeBucket("dst");
  ASSERT_EQ(client_->Send("PUT", "/src/a%20b", "payload",
                          {{"content-type", "text/x"}, {"x-amz-meta-k", "v"}})
                .status,
            200u);
  HttpResult r = client_->Send("PUT", "/dst/copy", "", {{"x-amz-copy-source", "/src/a%20b"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.body.find("<CopyObjectResult"), std::string::npos);
  EXPECT_FALSE(r.Xml("ETag").empty());
  r = client_->Send("GET", "/dst/copy");
  EXPECT_EQ(r.body, "payload");
  EXPECT_EQ(r.Header("content-type"), "text/x");
  EXPECT_EQ(r.Header("x-amz-meta-k"), "v");

  r = client_->Send("PUT", "/dst/replaced", "",
                    {{"x-amz-copy-source", "src/a%20b?versionId=null"},
                     {"x-amz-metadata-directive", "REPLACE"},
                     {"content-type", "text/y"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  r = client_->Send("HEAD", "/dst/replaced");
  EXPECT_EQ(r.Header("content-type"), "text/y");
  EXPECT_EQ(r.Header("x-amz-meta-k"), "");

  r = client_->Send("PUT", "/src/a%20b", "", {{"x-amz-copy-source", "/src/a%20b"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "InvalidRequest");
  r = client_->Send("PUT", "/dst/x", "",
                    {{"x-amz-copy-source", "/src/a%20b"}, {"x-amz-copy-source-if-match", "\"1\""}});
  EXPECT_EQ(r.status, 412u);
  r = client_->Send("PUT", "/dst/x", "", {{"x-amz-copy-source", "/src/missing"}});
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.Xml("Code"), "NoSuchKey");
}

}  // namespace
}  // namespace granary::s3::testing

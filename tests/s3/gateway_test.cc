// End-to-end tests of the gateway: buckets, authentication, addressing and errors.
#include "s3/auth.h"
#include "s3/gateway_test_util.h"

namespace granary::s3::testing {
namespace {

TEST_F(GatewayTest, HealthNeedsNoAuthentication) {
  HttpResult r = client_->SendUnsigned("GET", "/health");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "ok");
}

TEST_F(GatewayTest, AnonymousAndBadSignaturesAreRefused) {
  HttpResult r = client_->SendUnsigned("GET", "/");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.Xml("Code"), "AccessDenied");
  EXPECT_FALSE(r.Header("x-amz-request-id").empty());
  EXPECT_EQ(r.Xml("RequestId"), r.Header("x-amz-request-id"));

  // A header signed for one target, sent with another: SignatureDoesNotMatch.
  std::vector<std::pair<std::string, std::string>> headers = {{"host", client_->host()}};
  SignOptions options;
  options.access_key = kAccessKey;
  options.secret_key = kSecretKey;
  options.now_unix_s = time(nullptr);
  Result<SignedRequest> s = SignRequest("GET", "/a", &headers, options);
  ASSERT_TRUE(s.ok());
  headers.emplace_back("authorization", s->authorization);
  std::string raw = "GET /b HTTP/1.1\r\n";
  for (auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
  raw += "\r\n";
  r = client_->Raw(raw);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.Xml("Code"), "SignatureDoesNotMatch");

  options.access_key = "AKIDUNKNOWN";
  headers = {{"host", client_->host()}};
  s = SignRequest("GET", "/", &headers, options);
  ASSERT_TRUE(s.ok());
  headers.emplace_back("authorization", s->authorization);
  raw = "GET / HTTP/1.1\r\n";
  for (auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
  r = client_->Raw(raw + "\r\n");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.Xml("Code"), "InvalidAccessKeyId");
}

TEST_F(GatewayTest, BucketLifecycle) {
  MakeBucket("alpha");
  HttpResult r = client_->Send("PUT", "/alpha");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.Xml("Code"), "BucketAlreadyOwnedByYou");
  EXPECT_EQ(r.Xml("Resource"), "/alpha");

  r = client_->Send("PUT", "/beta",
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<LocationConstraint>us-east-1</LocationConstraint>"
                    "</CreateBucketConfiguration>");
  EXPECT_EQ(r.status, 200u) << r.body;
  r = client_->Send("PUT", "/gamma", "<CreateBucketConfiguration><LocationConstraint>mars-1"
                                     "</LocationConstraint></CreateBucketConfiguration>");
  EXPECT_EQ(r.Xml("Code"), "InvalidLocationConstraint");
  r = client_->Send("PUT", "/gamma", "<CreateBucketConfiguration>");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "MalformedXML");

  r = client_->Send("PUT", "/Bad_Name");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "InvalidBucketName");

  r = client_->Send("GET", "/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("<Name>alpha</Name>"), std::string::npos);
  EXPECT_NE(r.body.find("<Name>beta</Name>"), std::string::npos);
  EXPECT_NE(r.body.find("<ListAllMyBucketsResult"), std::string::npos);

  r = client_->Send("HEAD", "/alpha");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.Header("x-amz-bucket-region"), "us-east-1");
  r = client_->Send("GET", "/alpha?location");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("LocationConstraint"), std::string::npos);
  r = client_->Send("GET", "/alpha?versioning");
  EXPECT_EQ(r.status, 200u);

  ASSERT_EQ(client_->Send("PUT", "/alpha/k", "v").status, 200u);
  r = client_->Send("DELETE", "/alpha");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.Xml("Code"), "BucketNotEmpty");
  EXPECT_EQ(client_->Send("DELETE", "/alpha/k").status, 204u);
  EXPECT_EQ(client_->Send("DELETE", "/alpha").status, 204u);
  r = client_->Send("HEAD", "/alpha");
  EXPECT_EQ(r.status, 404u);
  r = client_->Send("GET", "/alpha");
  EXPECT_EQ(r.Xml("Code"), "NoSuchBucket");
}

TEST_F(GatewayTest, UnsupportedOperationsAreNotImplemented) {
  MakeBucket("bucket1");
  HttpResult r = client_->Send("GET", "/bucket1?acl");
  EXPECT_EQ(r.status, 501u);
  EXPECT_EQ(r.Xml("Code"), "NotImplemented");
  r = client_->Send("PUT", "/bucket1/k?tagging", "<Tagging/>");
  EXPECT_EQ(r.status, 501u);
}

TEST_F(GatewayTest, KeysArePercentDecoded) {
  MakeBucket("keys");
  const std::string keys[] = {"a b", "a+b", "dir/sub/x", "caf\xc3\xa9", "slash/encoded"};
  const std::string targets[] = {"/keys/a%20b", "/keys/a%2Bb", "/keys/dir/sub/x",
                                 "/keys/caf%C3%A9", "/keys/slash%2Fencoded"};
  for (size_t i = 0; i < std::size(keys); ++i) {
    HttpResult r = client_->Send("PUT", targets[i], keys[i]);
    ASSERT_EQ(r.status, 200u) << targets[i] << " " << r.body;
  }
  for (size_t i = 0; i < std::size(keys); ++i) {
    GetOptions none;
    Result<std::string> got = api_.Get("keys", keys[i], none);
    ASSERT_TRUE(got.ok()) << keys[i];
    EXPECT_EQ(*got, keys[i]);
  }
  // A literal '+' in a path stays a '+'.
  HttpResult r = client_->Send("GET", "/keys/a+b");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "a+b");
}

TEST_F(GatewayTest, VirtualHostStyleAddressing) {
  MakeBucket("vhost");
  S3Client vh(gateway_->port(), "vhost.localhost:" + std::to_string(gateway_->port()));
  HttpResult r = vh.Send("PUT", "/some/key", "hello");
  ASSERT_EQ(r.status, 200u) << r.body;
  Result<std::string> got = api_.Get("vhost", "some/key");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
  r = vh.Send("GET", "/?list-type=2");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.Xml("Name"), "vhost");
  EXPECT_EQ(r.Xml("Key"), "some/key");
}

TEST_F(GatewayTest, PresignedGet) {
  MakeBucket("pre");
  ASSERT_EQ(client_->Send("PUT", "/pre/obj", "presigned body").status, 200u);
  std::string target = client_->Presign("GET", "/pre/obj", 600);
  ASSERT_FALSE(target.empty());
  HttpResult r = client_->SendUnsigned("GET", target);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, "presigned body");
  // Tampered signature.
  std::string bad = target;
  bad.back() = bad.back() == '0' ? '1' : '0';
  r = client_->SendUnsigned("GET", bad);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.Xml("Code"), "SignatureDoesNotMatch");
}

TEST_F(GatewayTest, OversizedHeadersAreRefusedAndServerKeepsServing) {
  std::string raw = "GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + std::string(64 << 10, 'a') +
                    "\r\n\r\n";
  S3Client other(gateway_->port());
  HttpResult r = other.Raw(raw);
  if (r.ok) {
    EXPECT_EQ(r.status, 431u);
  }
  EXPECT_EQ(client_->SendUnsigned("GET", "/health").status, 200u);
}

TEST_F(GatewayTest, GarbageRequestGets400) {
  S3Client other(gateway_->port());
  HttpResult r = other.Raw("NOT HTTP AT ALL\r\n\r\n");
  if (r.ok) {
    EXPECT_EQ(r.status, 400u);
  }
  EXPECT_EQ(client_->SendUnsigned("GET", "/health").status, 200u);
}

}  // namespace
}  // namespace granary::s3::testing

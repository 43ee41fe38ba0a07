// Tests for SigV4 verification (src/s3/auth.cc), its canonical forms and the signing helpers.
// Expected signatures are the AWS documentation's published S3 examples (AKIAIOSFODNN7EXAMPLE at
// 20130524T000000Z); the extra ones were computed once with Python's hmac/hashlib.
#include "s3/auth.h"

#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <random>
#include <set>

namespace granary::s3 {
namespace {

constexpr char kAccessKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr char kHost[] = "examplebucket.s3.amazonaws.com";
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kCredential[] = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

SecretLookup Secrets() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return std::string(kSecretKey);
    if (key == "OTHERKEY") return std::string("othersecret");
    return std::nullopt;
  };
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// The S3 error code: the message up to the first ':'.
std::string S3Code(const Status& st) { return st.message().substr(0, st.message().find(':')); }

// AWS example "GET Object" with a Range header.
RequestView GetObject() {
  RequestView r;
  r.method = "GET";
  r.target = "/test.txt";
  r.headers = {
      {"host", kHost},
      {"range", "bytes=0-9"},
      {"x-amz-content-sha256", kEmpty},
      {"x-amz-date", "20130524T000000Z"},
      {"authorization", std::string("AWS4-HMAC-SHA256 ") + kCredential +
                            ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="
                            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"}};
  return r;
}

std::string& HeaderRef(RequestView& r, std::string_view name) {
  for (auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no header " << name;
  static std::string none;
  return none;
}

TEST(AuthTest, AwsExampleGetObject) {
  auto ctx = Authenticate(GetObject(), Secrets(), kNow);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(ctx->access_key, kAccessKey);
  EXPECT_EQ(ctx->payload_mode, PayloadMode::kSha256);
  EXPECT_EQ(ctx->payload_sha256, kEmpty);
  EXPECT_EQ(ctx->scope, "20130524/us-east-1/s3/aws4_request");
  EXPECT_EQ(ctx->amz_date, "20130524T000000Z");
  EXPECT_EQ(ctx->seed_signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_FALSE(ctx->presigned);
}

TEST(AuthTest, AwsExamplePutObject) {
  RequestView r;
  r.method = "PUT";
  r.target = "/test%24file.text";
  r.headers = {
      {"host", kHost},
      {"date", "Fri, 24 May 2013 00:00:00 GMT"},
      {"authorization",
       std::string("AWS4-HMAC-SHA256 ") + kCredential +
           ",SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
           "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"}};
  auto ctx = Authenticate(r, Secrets(), kNow);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(ctx->payload_mode, PayloadMode::kSha256);

  PayloadHasher good(ctx->payload_sha256);
  good.Update("Welcome to ");
  good.Update("Amazon S3.");
  EXPECT_TRUE(good.Finish().ok());
  PayloadHasher bad(ctx->payload_sha256);
  bad.Update("Welcome to Amazon S3!");
  Status st = bad.Finish();
  EXPECT_EQ(st.code(), Code::kBadDigest);
  EXPECT_EQ(S3Code(st), "XAmzContentSHA256Mismatch");
}

TEST(AuthTest, AwsExampleGetBucketLifecycleAndList) {
  RequestView r = GetObject();
  r.target = "/?lifecycle";
  r.headers.erase(r.headers.begin() + 1);  // range
  HeaderRef(r, "authorization") =
      std::string("AWS4-HMAC-SHA256 ") + kCredential +
      ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
      "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
  auto ctx = Authenticate(r, Secrets(), kNow);
  EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();

  r.target = "/?max-keys=2&prefix=J";
  HeaderRef(r, "authorization") =
      std::string("AWS4-HMAC-SHA256 ") + kCredential +
      ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
      "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
  ctx = Authenticate(r, Secrets(), kNow);
  EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
  // The query order on the wire does not matter; the values do.
  r.target = "/?prefix=J&max-keys=2";
  EXPECT_TRUE(Authenticate(r, Secrets(), kNow).ok());
  r.target = "/?prefix=K&max-keys=2";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "SignatureDoesNotMatch");
}

constexpr char kPresignedTarget[] =
    "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
    "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"
    "SignedHeaders=host&X-Amz-Signature="
    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

RequestView Presigned(std::string_view target) {
  RequestView r;
  r.method = "GET";
  r.target = target;
  r.headers = {{"host", kHost}};
  return r;
}

TEST(AuthTest, AwsExamplePresignedUrl) {
  auto ctx = Authenticate(Presigned(kPresignedTarget), Secrets(), kNow + 3600);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_TRUE(ctx->presigned);
  EXPECT_EQ(ctx->payload_mode, PayloadMode::kUnsigned);
  EXPECT_EQ(ctx->access_key, kAccessKey);

  // Valid until exactly X-Amz-Date + X-Amz-Expires.
  EXPECT_TRUE(Authenticate(Presigned(kPresignedTarget), Secrets(), kNow + 86400).ok());
  auto expired = Authenticate(Presigned(kPresignedTarget), Secrets(), kNow + 86401);
  EXPECT_EQ(expired.status().code(), Code::kUnauthenticated);
  EXPECT_TRUE(expired.status().message().starts_with("AccessDenied: request has expired"))
      << expired.status().message();
  auto early = Authenticate(Presigned(kPresignedTarget), Secrets(), kNow - 16 * 60);
  EXPECT_EQ(S3Code(early.status()), "AccessDenied");
  EXPECT_NE(early.status().message().find("not valid yet"), std::string::npos);
  // A little clock skew is tolerated.
  EXPECT_TRUE(Authenticate(Presigned(kPresignedTarget), Secrets(), kNow - 60).ok());
}

TEST(AuthTest, PresignedTamperingFails) {
  std::string t = kPresignedTarget;
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string out = t;
    size_t at = out.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    out.replace(at, from.size(), to);
    return out;
  };
  struct Case {
    std::string target;
    std::string code;
  };
  std::vector<Case> cases = {
      {replace("/test.txt", "/test.tx"), "SignatureDoesNotMatch"},
      {replace("86400", "86401"), "SignatureDoesNotMatch"},
      {replace("aeeed9", "aeeed8"), "SignatureDoesNotMatch"},
      {replace("us-east-1", "us-west-2"), "SignatureDoesNotMatch"},
      {t + "&extra=1", "SignatureDoesNotMatch"},
      {replace("AKIAIOSFODNN7EXAMPLE", "AKIAUNKNOWN"), "InvalidAccessKeyId"},
      {replace("X-Amz-Expires=86400", "X-Amz-Expires=604801"), "AuthorizationQueryParametersError"},
      {replace("X-Amz-Expires=86400", "X-Amz-Expires=0"), "AuthorizationQueryParametersError"},
      {replace("X-Amz-Expires=86400", "X-Amz-Expires=-5"), "AuthorizationQueryParametersError"},
      {replace("X-Amz-Expires=86400&", ""), "AuthorizationQueryParametersError"},
      {replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "AuthorizationQueryParametersError"},
      {replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
       "AuthorizationQueryParametersError"},
      {replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"),
       "AuthorizationQueryParametersError"},
      {t + "&X-Amz-Signature=00", "AuthorizationQueryParametersError"},
      {replace("%2Fs3%2F", "%2Fs4%2F"), "AuthorizationQueryParametersError"},
      {replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range"),
       "AuthorizationQueryParametersError"},
  };
  for (const auto& c : cases) {
    auto ctx = Authenticate(Presigned(c.target), Secrets(), kNow + 60);
    ASSERT_FALSE(ctx.ok()) << c.target;
    EXPECT_EQ(S3Code(ctx.status()), c.code) << c.target << " -> " << ctx.status().message();
  }
  // Another host, method or secret: the signature no longer matches.
  RequestView r = Presigned(kPresignedTarget);
  r.headers[0].second = "otherbucket.s3.amazonaws.com";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "SignatureDoesNotMatch");
  r = Presigned(kPresignedTarget);
  r.method = "PUT";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "SignatureDoesNotMatch");
  SecretLookup wrong = [](std::string_view) { return std::optional<std::string>("nope"); };
  EXPECT_EQ(S3Code(Authenticate(Presigned(kPresignedTarget), wrong, kNow).status()),
            "SignatureDoesNotMatch");
}

TEST(AuthTest, EveryTamperedFieldFails) {
  // method, target, each signed header value, the signature, the credential.
  std::vector<std::function<void(RequestView&)>> tamper = {
      [](RequestView& r) { r.method = "HEAD"; },
      [](RequestView& r) { r.target = "/test.txt2"; },
      [](RequestView& r) { r.target = "/Test.txt"; },
      [](RequestView& r) { r.target = "/test.txt?acl"; },
      [](RequestView& r) { HeaderRef(r, "host") = "evil.example.com"; },
      [](RequestView& r) { HeaderRef(r, "range") = "bytes=0-10"; },
      [](RequestView& r) { HeaderRef(r, "x-amz-date") = "20130524T000001Z"; },
      [](RequestView& r) { HeaderRef(r, "x-amz-content-sha256") = "UNSIGNED-PAYLOAD"; },
      [](RequestView& r) {
        r.headers.push_back({"range", "bytes=5-6"});
      },
      [](RequestView& r) {
        auto& a = HeaderRef(r, "authorization");
        a[a.size() - 1] = a.back() == '1' ? '2' : '1';
      },
      [](RequestView& r) {
        auto& a = HeaderRef(r, "authorization");
        a.replace(a.find("us-east-1"), 9, "eu-west-1");
      },
      [](RequestView& r) {
        auto& a = HeaderRef(r, "authorization");
        a.replace(a.find("host;range;"), 11, "host;");
      },
  };
  for (size_t i = 0; i < tamper.size(); ++i) {
    RequestView r = GetObject();
    tamper[i](r);
    auto ctx = Authenticate(r, Secrets(), kNow);
    ASSERT_FALSE(ctx.ok()) << "tamper case " << i;
    EXPECT_EQ(ctx.status().code(), Code::kUnauthenticated) << i;
    EXPECT_EQ(S3Code(ctx.status()), "SignatureDoesNotMatch") << i << ctx.status().message();
  }
  // A header that is signed but absent.
  RequestView r = GetObject();
  r.headers.erase(r.headers.begin() + 1);
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "SignatureDoesNotMatch");
  // Unsigned extra headers are allowed (proxies add them).
  r = GetObject();
  r.headers.push_back({"user-agent", "test"});
  EXPECT_TRUE(Authenticate(r, Secrets(), kNow).ok());
  // Unknown key.
  r = GetObject();
  auto& a = HeaderRef(r, "authorization");
  a.replace(a.find("AKIAIOSFODNN7EXAMPLE"), 20, "AKIAIOSFODNN7EXAMPLF");
  auto ctx = Authenticate(r, Secrets(), kNow);
  EXPECT_EQ(ctx.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(S3Code(ctx.status()), "InvalidAccessKeyId");
  EXPECT_EQ(S3Code(Authenticate(GetObject(), nullptr, kNow).status()), "InvalidAccessKeyId");
}

TEST(AuthTest, ClockSkew) {
  EXPECT_TRUE(Authenticate(GetObject(), Secrets(), kNow + 15 * 60).ok());
  EXPECT_TRUE(Authenticate(GetObject(), Secrets(), kNow - 15 * 60).ok());
  for (int64_t now : {kNow + 15 * 60 + 1, kNow - 15 * 60 - 1, int64_t{0}, int64_t{4102444800}}) {
    auto ctx = Authenticate(GetObject(), Secrets(), now);
    EXPECT_EQ(ctx.status().code(), Code::kUnauthenticated);
    EXPECT_EQ(S3Code(ctx.status()), "RequestTimeTooSkewed") << ctx.status().message();
  }
}

TEST(AuthTest, DateHeaderWithoutXAmzDate) {
  RequestView r;
  r.method = "GET";
  r.target = "/test.txt";
  r.headers = {
      {"date", "Fri, 24 May 2013 00:00:00 GMT"},
      {"host", kHost},
      {"x-amz-content-sha256", kEmpty},
      {"authorization", std::string("AWS4-HMAC-SHA256 ") + kCredential +
                            ", SignedHeaders=date;host;x-amz-content-sha256, Signature="
                            "f51e643fca75b7c8fd918b44dd7f5de20a60f46a456fd2170e1e8248a77144e1"}};
  auto ctx = Authenticate(r, Secrets(), kNow + 10);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(ctx->amz_date, "20130524T000000Z");
  HeaderRef(r, "date") = "Fri, 24 May 2013 00:00:01 GMT";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "SignatureDoesNotMatch");
  HeaderRef(r, "date") = "yesterday";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "AccessDenied");
  r.headers.erase(r.headers.begin());
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "AccessDenied");
}

TEST(AuthTest, AnonymousAndUnsupportedSchemes) {
  RequestView r;
  r.method = "GET";
  r.target = "/bucket/key?list-type=2";
  r.headers = {{"host", "localhost"}};
  auto ctx = Authenticate(r, Secrets(), kNow);
  EXPECT_EQ(ctx.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(S3Code(ctx.status()), "AccessDenied");

  r.headers.push_back({"authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="});
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "InvalidRequest");
  r.headers.back().second = "AWS4-ECDSA-P256-SHA256 Credential=x";
  EXPECT_EQ(Authenticate(r, Secrets(), kNow).status().code(), Code::kNotSupported);

  r.headers.pop_back();
  r.target = "/bucket/key?AWSAccessKeyId=AKIA&Expires=1&Signature=abc";
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "InvalidRequest");

  // Both the header and the query: rejected.
  RequestView both = GetObject();
  both.target = kPresignedTarget;
  EXPECT_EQ(S3Code(Authenticate(both, Secrets(), kNow).status()), "InvalidArgument");
  // Two Authorization headers.
  RequestView twice = GetObject();
  twice.headers.push_back(twice.headers.back());
  EXPECT_EQ(S3Code(Authenticate(twice, Secrets(), kNow).status()), "AuthorizationHeaderMalformed");
}

TEST(AuthTest, PayloadHeaderModes) {
  struct Case {
    std::string value;
    PayloadMode mode;
  };
  for (const Case& c : std::vector<Case>{
           {"UNSIGNED-PAYLOAD", PayloadMode::kUnsigned},
           {std::string(kEmpty), PayloadMode::kSha256},
           {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", PayloadMode::kStreamingSigned},
           {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", PayloadMode::kStreamingUnsigned},
           {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", PayloadMode::kStreamingSignedTrailer}}) {
    Headers h = {{"host", "localhost:9000"}, {"x-amz-decoded-content-length", "42"}};
    if (c.mode == PayloadMode::kStreamingUnsigned)
      h.push_back({"x-amz-trailer", "x-amz-checksum-crc32"});
    SignOptions opt{kAccessKey, kSecretKey, "us-east-1", kNow, c.value};
    auto signed_request = SignRequest("PUT", "/b/k", &h, opt);
    ASSERT_TRUE(signed_request.ok());
    h.push_back({"authorization", signed_request->authorization});
    RequestView r{"PUT", "/b/k", h};
    auto ctx = Authenticate(r, Secrets(), kNow);
    ASSERT_TRUE(ctx.ok()) << c.value << ": " << ctx.status().ToString();
    EXPECT_EQ(ctx->payload_mode, c.mode) << c.value;
    EXPECT_EQ(ctx->seed_signature, signed_request->signature);
    EXPECT_EQ(ctx->signing_key, signed_request->signing_key);
    EXPECT_EQ(ctx->decoded_length, IsStreaming(c.mode) ? 42u : UINT64_MAX);
    EXPECT_EQ(ctx->trailer,
              c.mode == PayloadMode::kStreamingUnsigned ? "x-amz-checksum-crc32" : "");
  }
  auto with_payload = [](std::string value, Headers extra = {}) {
    Headers h = {{"host", "localhost"}};
    for (auto& e : extra) h.push_back(e);
    SignOptions opt{kAccessKey, kSecretKey, "us-east-1", kNow, std::move(value)};
    auto s = SignRequest("PUT", "/b/k", &h, opt);
    EXPECT_TRUE(s.ok());
    h.push_back({"authorization", s->authorization});
    return Authenticate(RequestView{"PUT", "/b/k", h}, Secrets(), kNow);
  };
  EXPECT_EQ(S3Code(with_payload("abc").status()), "InvalidArgument");
  EXPECT_EQ(with_payload("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD").status().code(),
            Code::kNotSupported);
  EXPECT_EQ(
      S3Code(
          with_payload("UNSIGNED-PAYLOAD", {{"x-amz-trailer", "x-amz-checksum-crc32"}}).status()),
      "InvalidRequest");
  EXPECT_EQ(S3Code(with_payload("STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                {{"x-amz-trailer", "x-amz-checksum-md5"}})
                       .status()),
            "InvalidRequest");
  EXPECT_EQ(S3Code(with_payload("STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                {{"x-amz-decoded-content-length", "-1"}})
                       .status()),
            "InvalidArgument");
  // Upper-case hex digests are accepted and reported in lower case.
  std::string upper = kEmpty;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  auto ctx = with_payload(upper);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->payload_sha256, kEmpty);

  // Missing x-amz-content-sha256.
  RequestView r = GetObject();
  r.headers.erase(r.headers.begin() + 2);
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow).status()), "InvalidRequest");
}

TEST(AuthTest, SignedForAnotherRegionAndSpecialCharacters) {
  for (std::string target : {"/bucket/a%20b%2Bc~d/%C3%A9t%C3%A9.txt?prefix=a%20b&delimiter=%2F",
                             "/bucket/?list-type=2&continuation-token=abc%3D%3D&start-after=",
                             "/bucket/key?uploads", "/"}) {
    Headers h = {{"host", "127.0.0.1:9000"}, {"content-type", "text/plain;  charset=utf-8 "}};
    SignOptions opt{kAccessKey, kSecretKey, "eu-central-1", kNow, "UNSIGNED-PAYLOAD"};
    auto s = SignRequest("GET", target, &h, opt);
    ASSERT_TRUE(s.ok()) << target;
    h.push_back({"authorization", s->authorization});
    auto ctx = Authenticate(RequestView{"GET", target, h}, Secrets(), kNow);
    ASSERT_TRUE(ctx.ok()) << target << ": " << ctx.status().ToString();
    EXPECT_EQ(ctx->scope, "20130524/eu-central-1/s3/aws4_request");
  }
}

TEST(AuthTest, PathSignedEncodedButSentRaw) {
  // A client that signs the AWS encoding of the path but sends some characters raw.
  Headers h = {{"host", "localhost"}};
  SignOptions opt{kAccessKey, kSecretKey, "us-east-1", kNow, "UNSIGNED-PAYLOAD"};
  auto s = SignRequest("GET", "/bucket/it%27s%20%28here%29%21", &h, opt);
  ASSERT_TRUE(s.ok());
  h.push_back({"authorization", s->authorization});
  EXPECT_TRUE(Authenticate(RequestView{"GET", "/bucket/it's%20(here)!", h}, Secrets(), kNow).ok());
  EXPECT_TRUE(
      Authenticate(RequestView{"GET", "/bucket/it%27s%20%28here%29%21", h}, Secrets(), kNow).ok());
  EXPECT_FALSE(Authenticate(RequestView{"GET", "/bucket/its%20(here)!", h}, Secrets(), kNow).ok());
}

TEST(AuthTest, PresignRoundTrip) {
  SignOptions opt{kAccessKey, kSecretKey, "us-west-2", kNow, "UNSIGNED-PAYLOAD"};
  auto target = PresignTarget("PUT", "/bucket/my%20key?versionId=3", "localhost:9000", 300, opt);
  ASSERT_TRUE(target.ok());
  RequestView r{"PUT", *target, {{"host", "localhost:9000"}, {"content-length", "5"}}};
  auto ctx = Authenticate(r, Secrets(), kNow + 299);
  ASSERT_TRUE(ctx.ok()) << *target << ": " << ctx.status().ToString();
  EXPECT_TRUE(ctx->presigned);
  EXPECT_EQ(S3Code(Authenticate(r, Secrets(), kNow + 301).status()), "AccessDenied");
  EXPECT_FALSE(PresignTarget("GET", "/b/k", "h", 0, opt).ok());
  EXPECT_FALSE(PresignTarget("GET", "/b/k", "h", 604801, opt).ok());
  // The payload of a presigned URL cannot be a streaming mode.
  std::string streaming = *target + "&X-Amz-Content-Sha256=STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  EXPECT_EQ(
      S3Code(Authenticate(RequestView{"PUT", streaming, r.headers}, Secrets(), kNow).status()),
      "InvalidArgument");
}

TEST(AuthTest, MalformedAuthorizationHeaders) {
  const std::string good_sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  const std::string sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date";
  std::vector<std::string> bad = {
      "",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA256 ",
      "AWS4-HMAC-SHA256Credential=x",
      "Bearer abc",
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh,
      "AWS4-HMAC-SHA256 " + sh + ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh + ",Signature=" + good_sig +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh + ",Signature=xyz",
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh + ",Signature=" + good_sig + "0",
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh + ",Signature=" + good_sig +
          ",Extra=1",
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + ",," + sh + ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1/s3/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524//s3/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us east/s3/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws5_request," + sh +
          ",Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + ",SignedHeaders=,Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) +
          ",SignedHeaders=range;x-amz-date,Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) +
          ",SignedHeaders=host;;range,Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) +
          ",SignedHeaders=host;Range,Signature=" + good_sig,
      "AWS4-HMAC-SHA256 " + std::string(kCredential) +
          ",SignedHeaders=host;host,Signature=" + good_sig,
  };
  for (const auto& value : bad) {
    RequestView r = GetObject();
    HeaderRef(r, "authorization") = value;
    auto ctx = Authenticate(r, Secrets(), kNow);
    ASSERT_FALSE(ctx.ok()) << value;
    EXPECT_EQ(S3Code(ctx.status()), "AuthorizationHeaderMalformed")
        << value << " -> " << ctx.status().message();
  }
  // Blanks around the components and any order are fine.
  RequestView r = GetObject();
  HeaderRef(r, "authorization") =
      "AWS4-HMAC-SHA256  Signature=" + good_sig + " ,  " + sh + " , " + kCredential + "  ";
  EXPECT_TRUE(Authenticate(r, Secrets(), kNow).ok());
  // Upper-case signature hex is accepted.
  std::string upper = good_sig;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  HeaderRef(r, "authorization") =
      "AWS4-HMAC-SHA256 " + std::string(kCredential) + "," + sh + ",Signature=" + upper;
  EXPECT_TRUE(Authenticate(r, Secrets(), kNow).ok());
  // Bad request targets.
  for (std::string target : {"", "*", "test.txt", "http://host?x=1"}) {
    RequestView t = GetObject();
    t.target = target;
    EXPECT_FALSE(Authenticate(t, Secrets(), kNow).ok()) << target;
  }
}

// Random mutations of valid requests never crash, never hang and always produce a named error
// (or, rarely, an equivalent request that still verifies).
TEST(AuthTest, FuzzMutations) {
  const std::set<std::string> known = {"SignatureDoesNotMatch",
                                       "InvalidAccessKeyId",
                                       "AccessDenied",
                                       "AuthorizationHeaderMalformed",
                                       "AuthorizationQueryParametersError",
                                       "RequestTimeTooSkewed",
                                       "InvalidArgument",
                                       "InvalidRequest",
                                       "NotImplemented"};
  std::mt19937 rng(12345);
  const std::string alphabet = "/=,; %&?-_.~aAzZ09\t\r\n\x80\xff\0";
  auto mutate = [&](std::string s) {
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 4) {
        case 0:
          if (at < s.size()) s.erase(at, 1 + rng() % 8);
          break;
        case 1:
          s.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          if (at < s.size()) s[at] = static_cast<char>(rng());
          break;
        case 3:
          s = s.substr(0, at);
          break;
      }
    }
    return s;
  };
  int accepted = 0;
  for (int i = 0; i < 4000; ++i) {
    RequestView r = i % 2 ? GetObject() : Presigned(kPresignedTarget);
    std::string target(r.target);
    if (i % 2) {
      HeaderRef(r, "authorization") = mutate(HeaderRef(r, "authorization"));
      if (i % 7 == 0) HeaderRef(r, "x-amz-date") = mutate(HeaderRef(r, "x-amz-date"));
    } else {
      target = mutate(target);
      r.target = target;
    }
    auto ctx = Authenticate(r, Secrets(), kNow);
    if (ctx.ok()) {
      ++accepted;
      continue;
    }
    EXPECT_TRUE(known.count(S3Code(ctx.status()))) << ctx.status().message();
  }
  EXPECT_LT(accepted, 400);
}

}  // namespace
}  // namespace granary::s3

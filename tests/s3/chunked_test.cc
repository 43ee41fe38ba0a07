// Tests for ChunkDecoder (aws-chunked bodies), PayloadChecksum and ChunkSigner. The streaming
// example is the AWS documentation's (seed and chunk signatures as published); the trailer
// vectors were computed once with Python's hmac/hashlib/zlib.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "s3/auth.h"

namespace granary::s3 {
namespace {

constexpr char kAccessKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z

using Headers = std::vector<std::pair<std::string, std::string>>;

SecretLookup Secrets() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return std::string(kSecretKey);
    return std::nullopt;
  };
}

std::string S3Code(const Status& st) { return st.message().substr(0, st.message().find(':')); }

AuthContext MustAuthenticate(const std::string& target, const Headers& headers) {
  auto ctx = Authenticate(RequestView{"PUT", target, headers}, Secrets(), kNow);
  EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
  return ctx.ok() ? *ctx : AuthContext{};
}

// The AWS example: PUT /examplebucket/chunkObject.txt, 66560 bytes of 'a' in chunks of 65536
// and 1024 bytes.
AuthContext AwsExampleContext() {
  return MustAuthenticate(
      "/examplebucket/chunkObject.txt",
      {{"host", "s3.amazonaws.com"},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,"
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
       {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
       {"content-encoding", "aws-chunked"},
       {"x-amz-decoded-content-length", "66560"},
       {"content-length", "66824"}});
}

std::string AwsExampleBody() {
  return "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
         "\r\n" +
         std::string(65536, 'a') +
         "\r\n400;chunk-signature="
         "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
         std::string(1024, 'a') +
         "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
         "\r\n\r\n";
}

// Feeds `body` cut at `cuts` (ascending offsets) and finishes.
Status Decode(const AuthContext& ctx, std::string_view body, const std::vector<size_t>& cuts,
              std::string* out) {
  ChunkDecoder decoder(ctx);
  size_t pos = 0;
  for (size_t cut : cuts) {
    RETURN_IF_ERROR(decoder.Feed(body.substr(pos, cut - pos), out));
    pos = cut;
  }
  RETURN_IF_ERROR(decoder.Feed(body.substr(pos), out));
  return decoder.Finish();
}

TEST(ChunkDecoderTest, AwsStreamingExample) {
  AuthContext ctx = AwsExampleContext();
  ASSERT_EQ(ctx.payload_mode, PayloadMode::kStreamingSigned);
  EXPECT_EQ(ctx.decoded_length, 66560u);
  std::string body = AwsExampleBody();
  ASSERT_EQ(body.size(), 66824u);  // the example's Content-Length

  std::string out;
  ASSERT_TRUE(Decode(ctx, body, {}, &out).ok());
  EXPECT_TRUE(out == std::string(66560, 'a'));

  // One byte at a time.
  ChunkDecoder decoder(ctx);
  out.clear();
  for (char c : body) ASSERT_TRUE(decoder.Feed(std::string_view(&c, 1), &out).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  EXPECT_EQ(out.size(), 66560u);
  EXPECT_EQ(decoder.decoded_bytes(), 66560u);

  // Cut in two at many points, including every point of the framing.
  for (size_t cut = 0; cut <= body.size();
       cut += (cut < 100 || body.size() - cut < 300 || (cut > 65600 && cut < 65750)) ? 1 : 997) {
    out.clear();
    Status st = Decode(ctx, body, {cut}, &out);
    ASSERT_TRUE(st.ok()) << cut << ": " << st.ToString();
    ASSERT_EQ(out.size(), 66560u);
  }

  // The signature chain: a swapped chunk signature or changed data fails.
  std::string bad = body;
  bad[100] = 'b';
  out.clear();
  Status st = Decode(ctx, bad, {}, &out);
  EXPECT_EQ(S3Code(st), "SignatureDoesNotMatch");
  EXPECT_EQ(st.code(), Code::kUnauthenticated);
  bad = body;
  bad[bad.size() - 5] = bad[bad.size() - 5] == '9' ? '8' : '9';  // the final chunk's signature
  EXPECT_EQ(S3Code(Decode(ctx, bad, {}, &out)), "SignatureDoesNotMatch");
}

// A small body in each streaming mode, built with ChunkSigner / by hand.
struct SmallBody {
  AuthContext ctx;
  std::string body;
  std::string payload;
};

SmallBody MakeSmallBody(PayloadMode mode) {
  static constexpr const char* kModes[] = {"", "", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                           "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                           "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"};
  SmallBody out;
  out.payload = "hello world, chunked!";
  Headers h = {{"host", "localhost:9000"},
               {"content-encoding", "aws-chunked"},
               {"x-amz-decoded-content-length", std::to_string(out.payload.size())}};
  bool trailer = mode != PayloadMode::kStreamingSigned;
  if (trailer) h.push_back({"x-amz-trailer", "x-amz-checksum-crc32"});
  SignOptions opt{kAccessKey, kSecretKey, "us-east-1", kNow, kModes[static_cast<int>(mode)]};
  auto signed_request = SignRequest("PUT", "/b/small", &h, opt);
  EXPECT_TRUE(signed_request.ok());
  h.push_back({"authorization", signed_request->authorization});
  out.ctx = MustAuthenticate("/b/small", h);
  std::string checksum = *ChecksumBase64("crc32", out.payload);
  std::vector<std::string_view> pieces = {std::string_view(out.payload).substr(0, 6),
                                          std::string_view(out.payload).substr(6, 7),
                                          std::string_view(out.payload).substr(13)};
  if (mode == PayloadMode::kStreamingUnsigned) {
    for (auto p : pieces) {
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", p.size());
      out.body += std::string(size) + std::string(p) + "\r\n";
    }
    out.body += "0\r\nx-amz-checksum-crc32:" + checksum + "\r\n\r\n";
  } else {
    ChunkSigner signer(*signed_request);
    for (auto p : pieces) out.body += signer.Chunk(p);
    out.body += signer.Chunk("");
    out.body += trailer ? signer.Trailer({{"x-amz-checksum-crc32", checksum}}) : "\r\n";
  }
  return out;
}

class SmallBodyTest : public ::testing::TestWithParam<PayloadMode> {};

TEST_P(SmallBodyTest, EverySplitOfTheInput) {
  SmallBody b = MakeSmallBody(GetParam());
  std::string out;
  ASSERT_TRUE(Decode(b.ctx, b.body, {}, &out).ok());
  EXPECT_EQ(out, b.payload);
  // Every cut in two, and a seventh of the cuts in three (all of them take seconds).
  for (size_t i = 0; i <= b.body.size(); ++i) {
    for (size_t j = i; j <= b.body.size(); ++j) {
      if (j != i && (i * 31 + j) % 7 != 0) continue;
      out.clear();
      Status st = Decode(b.ctx, b.body, {i, j}, &out);
      ASSERT_TRUE(st.ok()) << i << "," << j << ": " << st.ToString();
      ASSERT_EQ(out, b.payload);
    }
  }
}

TEST_P(SmallBodyTest, EveryChangedByteFails) {
  SmallBody b = MakeSmallBody(GetParam());
  for (size_t i = 0; i < b.body.size(); ++i) {
    std::string bad = b.body;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    std::string out;
    Status st = Decode(b.ctx, bad, {}, &out);
    EXPECT_FALSE(st.ok()) << "byte " << i << " of\n" << b.body;
  }
  // Every truncation fails too, except dropping the closing empty line of the trailer.
  for (size_t n = 0; n + 2 < b.body.size(); ++n) {
    std::string out;
    Status st = Decode(b.ctx, std::string_view(b.body).substr(0, n), {}, &out);
    EXPECT_FALSE(st.ok()) << "truncated to " << n;
  }
  std::string out;
  EXPECT_TRUE(Decode(b.ctx, std::string_view(b.body).substr(0, b.body.size() - 2), {}, &out).ok());
  EXPECT_FALSE(Decode(b.ctx, b.body + "x", {}, &out).ok());
  EXPECT_FALSE(Decode(b.ctx, b.body + "\r\n", {}, &out).ok());
}

TEST_P(SmallBodyTest, RandomMutationsNeverCrash) {
  SmallBody b = MakeSmallBody(GetParam());
  std::mt19937 rng(static_cast<unsigned>(GetParam()) * 7919 + 1);
  const std::string alphabet = "0123456789abcdefABCDEF;=\r\n:x- \0\xff";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = b.body;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0:
          if (at < s.size()) s.erase(at, 1 + rng() % 4);
          break;
        case 1:
          s.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          if (at < s.size()) s[at] = alphabet[rng() % alphabet.size()];
          break;
      }
    }
    std::vector<size_t> cuts;
    for (size_t k = 0, n = rng() % 4; k < n; ++k) cuts.push_back(rng() % (s.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    std::string out;
    Status st = Decode(b.ctx, s, cuts, &out);
    if (st.ok()) {
      EXPECT_EQ(out, b.payload);  // only a harmless change may pass (e.g. an ignored extension)
    } else {
      static const std::set<std::string> kKnown = {"SignatureDoesNotMatch", "IncompleteBody",
                                                   "InvalidRequest", "MalformedTrailerError",
                                                   "BadDigest"};
      EXPECT_TRUE(kKnown.count(S3Code(st))) << st.message();
      EXPECT_LE(out.size(), s.size());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SmallBodyTest,
                         ::testing::Values(PayloadMode::kStreamingSigned,
                                           PayloadMode::kStreamingUnsigned,
                                           PayloadMode::kStreamingSignedTrailer));

// What boto3 and awscli v2 send by default for PutObject: an unsigned aws-chunked body with a
// CRC32 trailer.
TEST(ChunkDecoderTest, UnsignedPayloadWithCrc32Trailer) {
  AuthContext ctx = MustAuthenticate(
      "/hello.txt",
      {{"host", "examplebucket.s3.amazonaws.com"},
       {"content-encoding", "aws-chunked"},
       {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-decoded-content-length", "11"},
       {"x-amz-trailer", "x-amz-checksum-crc32"},
       {"authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-trailer, "
        "Signature=c009cf3d639c272bf6cf4f215c6d4405e017252d10b2b791bf13dcb0eadb8ae7"}});
  ASSERT_EQ(ctx.payload_mode, PayloadMode::kStreamingUnsigned);
  ASSERT_EQ(ctx.trailer, "x-amz-checksum-crc32");
  std::string out;
  ChunkDecoder decoder(ctx);
  ASSERT_TRUE(
      decoder.Feed("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", &out).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  EXPECT_EQ(out, "hello world");
  ASSERT_EQ(decoder.trailers().size(), 1u);
  EXPECT_EQ(decoder.trailers()[0].second, "DUoRhQ==");

  out.clear();
  Status st =
      Decode(ctx, "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhA==\r\n\r\n", {}, &out);
  EXPECT_EQ(st.code(), Code::kBadDigest);
  EXPECT_EQ(S3Code(st), "BadDigest");
  st = Decode(ctx, "b\r\nhello world\r\n0\r\n\r\n", {}, &out);
  EXPECT_EQ(S3Code(st), "MalformedTrailerError");
  st = Decode(ctx, "b\r\nhello world\r\n0\r\nx-amz-checksum-sha1:abc=\r\n\r\n", {}, &out);
  EXPECT_EQ(S3Code(st), "InvalidRequest");
  st = Decode(ctx, "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32\r\n\r\n", {}, &out);
  EXPECT_EQ(S3Code(st), "MalformedTrailerError");
  st = Decode(ctx,
              "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n"
              "x-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
              {}, &out);
  EXPECT_EQ(S3Code(st), "MalformedTrailerError");
  st = Decode(ctx,
              "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:" +
                  std::string(64, 'a') + "\r\n\r\n",
              {}, &out);
  EXPECT_EQ(S3Code(st), "InvalidRequest");
  // The decoded length must match x-amz-decoded-content-length.
  st = Decode(ctx, "a\r\nhello worl\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", {}, &out);
  EXPECT_EQ(S3Code(st), "IncompleteBody");
  st = Decode(ctx, "c\r\nhello world!\r\n0\r\n\r\n", {}, &out);
  EXPECT_EQ(S3Code(st), "InvalidRequest");
}

TEST(ChunkDecoderTest, SignedPayloadWithSignedTrailer) {
  Headers h = {{"host", "s3.amazonaws.com"},
               {"content-encoding", "aws-chunked"},
               {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-decoded-content-length", "66560"},
               {"x-amz-trailer", "x-amz-checksum-crc32c"},
               {"authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                "aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-decoded-content-length;x-amz-trailer,Signature="
                "4cb33882555cdf04ab2d8e88e59db3d8d873f42392e7fe7bf76f4b38facf3bcd"}};
  AuthContext ctx = MustAuthenticate("/examplebucket/chunkObject.txt", h);
  ASSERT_EQ(ctx.payload_mode, PayloadMode::kStreamingSignedTrailer);
  std::string body =
      "10000;chunk-signature=4220e9a22f96c0b45e00d5c08bfff6cca0c815e1e854f3090ce29045c796244c\r\n" +
      std::string(65536, 'a') +
      "\r\n400;chunk-signature="
      "e5f3cc9973671c941ed1803e1db762b6bcb6a20fed4f7aad627722172c751fd1\r\n" +
      std::string(1024, 'a') +
      "\r\n0;chunk-signature=dbacb0f9a771e401819194532c4356d26aaea027151b0aec87baf40399ad503d\r\n"
      "x-amz-checksum-crc32c:sOO8/Q==\r\n"
      "x-amz-trailer-signature:ca720ceace903cd1fcf46cbdb98900965e17a753aa7f224cbcde2128a5f11e95\r\n"
      "\r\n";
  std::string out;
  Status st = Decode(ctx, body, {70, 65700}, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(out == std::string(66560, 'a'));

  // ChunkSigner produces the same bytes.
  SignedRequest sr{"", ctx.seed_signature, ctx.amz_date, ctx.scope, ctx.signing_key};
  ChunkSigner signer(sr);
  std::string signed_body = signer.Chunk(std::string(65536, 'a'));
  signed_body += signer.Chunk(std::string(1024, 'a'));
  signed_body += signer.Chunk("");
  signed_body += signer.Trailer({{"x-amz-checksum-crc32c", "sOO8/Q=="}});
  EXPECT_TRUE(signed_body == body);

  std::string bad = body;
  bad.replace(bad.find("ca720cea"), 8, "ca720ceb");
  EXPECT_EQ(S3Code(Decode(ctx, bad, {}, &out)), "SignatureDoesNotMatch");
  bad = body;
  bad.erase(bad.find("x-amz-trailer-signature"));
  bad += "\r\n";
  EXPECT_EQ(S3Code(Decode(ctx, bad, {}, &out)), "SignatureDoesNotMatch");
}

TEST(ChunkDecoderTest, FramingErrors) {
  SmallBody b = MakeSmallBody(PayloadMode::kStreamingUnsigned);
  struct Case {
    std::string body;
    std::string code;
  };
  std::vector<Case> cases = {
      {"", "IncompleteBody"},
      {"5\r\nhel", "IncompleteBody"},
      {"5\r\nhello\r\n", "IncompleteBody"},
      {"zz\r\nhello\r\n", "InvalidRequest"},
      {";x\r\n", "InvalidRequest"},
      {"10000000000000000\r\n", "InvalidRequest"},
      {"5\nhello\r\n", "InvalidRequest"},
      {"3\r\nhello\r\n", "InvalidRequest"},
      {"15\r\nhello world, chunked!\r\n0\r\nx-amz-checksum-crc32:" +
           *ChecksumBase64("crc32", b.payload) + "\r\n\r\ntrailing",
       "InvalidRequest"},
  };
  for (const auto& c : cases) {
    std::string out;
    Status st = Decode(b.ctx, c.body, {}, &out);
    EXPECT_EQ(S3Code(st), c.code) << c.body << " -> " << st.message();
  }
  // A header line that never ends is refused once it passes 4 KiB, without buffering the rest.
  ChunkDecoder decoder(b.ctx);
  std::string out;
  std::string junk(1 << 20, 'a');
  Status st = decoder.Feed(junk, &out);
  EXPECT_EQ(S3Code(st), "InvalidRequest");
  EXPECT_TRUE(out.empty());
  // Every later call reports the same error.
  EXPECT_EQ(decoder.Feed("", &out), st);
  EXPECT_EQ(decoder.Feed("0\r\n\r\n", &out), st);
  EXPECT_EQ(decoder.Finish(), st);

  // A signed mode needs a signature on every chunk.
  SmallBody s = MakeSmallBody(PayloadMode::kStreamingSigned);
  EXPECT_EQ(S3Code(Decode(s.ctx, "5\r\nhello\r\n", {}, &out)), "SignatureDoesNotMatch");
  EXPECT_EQ(S3Code(Decode(s.ctx, "5;chunk-signature=abc\r\nhello\r\n", {}, &out)),
            "SignatureDoesNotMatch");
  // A trailer in the plain signed mode is refused.
  std::string with_trailer = s.body.substr(0, s.body.size() - 2) + "x-amz-meta-a:b\r\n\r\n";
  EXPECT_EQ(S3Code(Decode(s.ctx, with_trailer, {}, &out)), "InvalidRequest");

  // Not a streaming request at all.
  AuthContext plain;
  plain.payload_mode = PayloadMode::kUnsigned;
  ChunkDecoder wrong(plain);
  EXPECT_EQ(wrong.Feed("0\r\n\r\n", &out).code(), Code::kInternal);
}

TEST(ChecksumTest, CheckValues) {
  auto be_base64 = [](uint64_t v, int bytes) {
    std::string raw;
    for (int i = bytes - 1; i >= 0; --i) raw += static_cast<char>((v >> (8 * i)) & 0xff);
    return Base64Encode(raw);
  };
  EXPECT_EQ(*ChecksumBase64("crc32", "123456789"), be_base64(0xCBF43926, 4));
  EXPECT_EQ(*ChecksumBase64("crc32c", "123456789"), be_base64(0xE3069283, 4));
  EXPECT_EQ(*ChecksumBase64("crc64nvme", "123456789"), be_base64(0xAE8B14860A799888ULL, 8));
  EXPECT_EQ(*ChecksumBase64("x-amz-checksum-crc32", "hello world"), "DUoRhQ==");
  EXPECT_EQ(*ChecksumBase64("CRC64NVME", "hello world"), "jSnVw/bqjr4=");
  EXPECT_EQ(*ChecksumBase64("crc32c", std::string(66560, 'a')), "sOO8/Q==");
  EXPECT_EQ(*ChecksumBase64("sha1", "abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  EXPECT_EQ(*ChecksumBase64("sha256", ""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_FALSE(ChecksumBase64("md5", "x").ok());
  // Incremental updates equal one update, for every split.
  std::string data = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox";
  for (std::string_view algorithm : {"crc32", "crc32c", "crc64nvme", "sha1", "sha256"}) {
    std::string whole = *ChecksumBase64(algorithm, data);
    for (size_t cut = 0; cut <= data.size(); ++cut) {
      auto c = PayloadChecksum::Create(algorithm);
      ASSERT_TRUE(c.ok());
      (*c)->Update(std::string_view(data).substr(0, cut));
      (*c)->Update(std::string_view(data).substr(cut));
      ASSERT_EQ((*c)->Base64(), whole) << algorithm << " " << cut;
    }
  }
}

}  // namespace
}  // namespace granary::s3

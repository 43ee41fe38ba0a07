// Tests for the SigV4 building blocks: canonical query strings, URI encoding, dates and header
// values (src/s3/auth_canonical.cc), and hex, base64, HMAC and digests (src/s3/auth_crypto.cc).
#include <gtest/gtest.h>

#include <map>

#include "s3/auth.h"
#include "s3/auth_internal.h"

namespace granary::s3 {
namespace {

constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(AuthCanonicalTest, QueryString) {
  auto q = [](std::string_view raw, std::string_view skip = {}) {
    auto r = CanonicalQueryString(raw, skip);
    EXPECT_TRUE(r.ok()) << raw;
    return r.ok() ? *r : std::string("<error>");
  };
  EXPECT_EQ(q(""), "");
  EXPECT_EQ(q("acl"), "acl=");
  EXPECT_EQ(q("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
  EXPECT_EQ(q("prefix=a+b%2fc%7E&&x=%c3%a9"), "prefix=a%20b%2Fc~&x=%C3%A9");
  EXPECT_EQ(q("X-Amz-Signature=abc&k=v", "X-Amz-Signature"), "k=v");
  EXPECT_EQ(q("a=1=2"), "a=1%3D2");
  EXPECT_FALSE(CanonicalQueryString("a=%zz").ok());
  EXPECT_FALSE(CanonicalQueryString("a=%4").ok());
  EXPECT_EQ(UriEncode("a b/c~é", true), "a%20b/c~%C3%A9");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
}

TEST(AuthCanonicalTest, DatesAndHeaderValues) {
  EXPECT_EQ(internal::FormatAmzDate(kNow), "20130524T000000Z");
  EXPECT_EQ(internal::FormatAmzDate(951782400 + 86399), "20000229T235959Z");
  EXPECT_EQ(*internal::ParseAmzDate("20130524T000000Z"), kNow);
  EXPECT_EQ(*internal::ParseAmzDate("20000229T235959Z"), 951782400 + 86399);
  for (std::string_view bad : {"20130524T000000", "2013-05-24T00:00:00Z", "20130230T000000Z",
                               "20130524T240000Z", "19690101T000000Z", "2013052aT000000Z"}) {
    EXPECT_FALSE(internal::ParseAmzDate(bad).ok()) << bad;
  }
  EXPECT_EQ(*internal::ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT"), kNow);
  EXPECT_FALSE(internal::ParseHttpDate("Fri, 24 Foo 2013 00:00:00 GMT").ok());
  EXPECT_FALSE(internal::ParseHttpDate("Fri, 24 May 2013 00:00:00 PST").ok());
  EXPECT_EQ(internal::CanonicalHeaderValue("  a   b \t c  "), "a b c");
  EXPECT_EQ(internal::CanonicalHeaderValue(""), "");
}

TEST(AuthCryptoTest, EncodingsAndDigests) {
  EXPECT_EQ(HexEncode(std::string("\x00\x7f\xff", 3)), "007fff");
  EXPECT_EQ(*HexDecode("007FfF"), std::string("\x00\x7f\xff", 3));
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  const std::map<std::string, std::string> b64 = {{"", ""},
                                                  {"f", "Zg=="},
                                                  {"fo", "Zm8="},
                                                  {"foo", "Zm9v"},
                                                  {"foob", "Zm9vYg=="},
                                                  {"fooba", "Zm9vYmE="},
                                                  {"foobar", "Zm9vYmFy"},
                                                  {"\xff\xfe", "//4="}};
  for (const auto& [raw, enc] : b64) {
    EXPECT_EQ(Base64Encode(raw), enc);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(*dec, raw);
  }
  for (std::string_view bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9v!A==", "=Zg=", "Zg==Zg=="}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  Md5 md5;
  EXPECT_EQ(md5.HexDigest(), "d41d8cd98f00b204e9800998ecf8427e");
  md5.Update("The quick brown fox ");
  md5.Update("jumps over the lazy dog");
  EXPECT_EQ(md5.HexDigest(), "9e107d9d372bb6826bd81d3542a419d6");
  md5.Update("");
  EXPECT_EQ(md5.Base64Digest(), "1B2M2Y8AsgTpgAmY7PhCfg==");
  Sha1 sha1;
  sha1.Update("abc");
  EXPECT_EQ(sha1.HexDigest(), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

}  // namespace
}  // namespace granary::s3

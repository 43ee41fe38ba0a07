// End-to-end tests of listings, multipart uploads and DeleteObjects.
#include "s3/auth.h"
#include "s3/gateway_test_util.h"

namespace granary::s3::testing {
namespace {

std::string Md5Base64(const std::string& data) {
  Md5 md5;
  md5.Update(data);
  return md5.Base64Digest();
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST_F(GatewayTest, ListObjectsV2) {
  MakeBucket("list");
  for (const char* k : {"a/1", "a/2", "b/1", "c", "d e"}) {
    ASSERT_EQ(client_->Send("PUT", std::string("/list/") + (std::string(k) == "d e" ? "d%20e" : k),
                            "x").status,
              200u);
  }
  HttpResult r = client_->Send("GET", "/list?list-type=2");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.Xml("KeyCount"), "5");
  EXPECT_EQ(r.Xml("IsTruncated"), "false");

  r = client_->Send("GET", "/list?list-type=2&delimiter=%2F");
  EXPECT_EQ(r.Xml("KeyCount"), "4");
  EXPECT_NE(r.body.find("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"),
            std::string::npos);
  EXPECT_NE(r.body.find("<CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>"),
            std::string::npos);

  r = client_->Send("GET", "/list?list-type=2&prefix=a%2F");
  EXPECT_EQ(Count(r.body, "<Contents>"), 2u);

  // Pages of two, following continuation tokens.
  std::string token;
  size_t keys = 0;
  for (int page = 0; page < 10; ++page) {
    std::string target = "/list?list-type=2&max-keys=2";
    if (!token.empty()) target += "&continuation-token=" + UriEncode(token, false);
    r = client_->Send("GET", target);
    ASSERT_EQ(r.status, 200u) << r.body;
    keys += Count(r.body, "<Contents>");
    if (r.Xml("IsTruncated") != "true") break;
    token = r.Xml("NextContinuationToken");
    ASSERT_FALSE(token.empty());
  }
  EXPECT_EQ(keys, 5u);

  r = client_->Send("GET", "/list?list-type=2&start-after=b%2F1");
  EXPECT_EQ(Count(r.body, "<Contents>"), 2u);
  r = client_->Send("GET", "/list?list-type=2&encoding-type=url&prefix=d");
  EXPECT_EQ(r.Xml("Key"), "d%20e");
  r = client_->Send("GET", "/list?list-type=2&max-keys=abc");
  EXPECT_EQ(r.status, 400u);
  r = client_->Send("GET", "/list?list-type=2&continuation-token=%21%21");
  EXPECT_EQ(r.status, 400u);
}

TEST_F(GatewayTest, ListObjectsV1Markers) {
  MakeBucket("listv1");
  for (const char* k : {"k1", "k2", "k3", "p/x", "p/y"}) {
    ASSERT_EQ(client_->Send("PUT", std::string("/listv1/") + k, "x").status, 200u);
  }
  HttpResult r = client_->Send("GET", "/listv1?max-keys=2");
  EXPECT_EQ(r.Xml("IsTruncated"), "true");
  EXPECT_EQ(r.body.find("<NextMarker>"), std::string::npos);  // only with a delimiter
  r = client_->Send("GET", "/listv1?marker=k2");
  EXPECT_EQ(Count(r.body, "<Contents>"), 3u);
  EXPECT_EQ(r.Xml("Marker"), "k2");
  r = client_->Send("GET", "/listv1?delimiter=/&max-keys=3");
  EXPECT_EQ(r.Xml("IsTruncated"), "true");
  EXPECT_EQ(r.Xml("NextMarker"), "k3");
}

TEST_F(GatewayTest, MultipartUpload) {
  api_.set_min_part_bytes(4);
  MakeBucket("mpu");
  HttpResult r = client_->Send("POST", "/mpu/big?uploads", "", {{"content-type", "video/x"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  std::string id = r.Xml("UploadId");
  ASSERT_FALSE(id.empty());

  std::string parts[] = {"first-part-", "second-part-", "end"};
  std::string etags[3];
  for (int i = 0; i < 3; ++i) {
    r = client_->Send("PUT", "/mpu/big?partNumber=" + std::to_string(i + 1) + "&uploadId=" + id,
                      parts[i]);
    ASSERT_EQ(r.status, 200u) << r.body;
    etags[i] = r.Header("etag");
  }
  r = client_->Send("PUT", "/mpu/big?partNumber=0&uploadId=" + id, "x");
  EXPECT_EQ(r.status, 400u);

  r = client_->Send("GET", "/mpu/big?uploadId=" + id);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(Count(r.body, "<Part>"), 3u);
  r = client_->Send("GET", "/mpu?uploads");
  EXPECT_EQ(r.Xml("UploadId"), id);

  std::string bad_order = "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>" +
                          etags[1] + "</ETag></Part><Part><PartNumber>1</PartNumber><ETag>" +
                          etags[0] + "</ETag></Part></CompleteMultipartUpload>";
  r = client_->Send("POST", "/mpu/big?uploadId=" + id, bad_order);
  EXPECT_EQ(r.Xml("Code"), "InvalidPartOrder");
  r = client_->Send("POST", "/mpu/big?uploadId=" + id, "<CompleteMultipartUpload>");
  EXPECT_EQ(r.Xml("Code"), "MalformedXML");

  std::string xml = "<CompleteMultipartUpload>";
  for (int i = 0; i < 3; ++i) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] +
           "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  r = client_->Send("POST", "/mpu/big?uploadId=" + id, xml);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.Xml("ETag").find("-3"), std::string::npos);
  r = client_->Send("GET", "/mpu/big");
  EXPECT_EQ(r.body, parts[0] + parts[1] + parts[2]);
  EXPECT_EQ(r.Header("content-type"), "video/x");

  // Abort.
  r = client_->Send("POST", "/mpu/other?uploads");
  std::string id2 = r.Xml("UploadId");
  EXPECT_EQ(client_->Send("DELETE", "/mpu/other?uploadId=" + id2).status, 204u);
  r = client_->Send("PUT", "/mpu/other?partNumber=1&uploadId=" + id2, "x");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.Xml("Code"), "NoSuchUpload");
}

TEST_F(GatewayTest, UploadPartCopy) {
  api_.set_min_part_bytes(1);
  MakeBucket("upc");
  ASSERT_EQ(client_->Send("PUT", "/upc/src", "0123456789").status, 200u);
  HttpResult r = client_->Send("POST", "/upc/dst?uploads");
  std::string id = r.Xml("UploadId");
  r = client_->Send("PUT", "/upc/dst?partNumber=1&uploadId=" + id, "",
                    {{"x-amz-copy-source", "/upc/src"}, {"x-amz-copy-source-range", "bytes=2-4"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  std::string xml = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" +
                    r.Xml("ETag") + "</ETag></Part></CompleteMultipartUpload>";
  ASSERT_EQ(client_->Send("POST", "/upc/dst?uploadId=" + id, xml).status, 200u);
  EXPECT_EQ(client_->Send("GET", "/upc/dst").body, "234");
}

TEST_F(GatewayTest, DeleteObjects) {
  MakeBucket("del");
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_EQ(client_->Send("PUT", std::string("/del/") + k, "x").status, 200u);
  }
  std::string body =
      "<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object>"
      "<Object><Key>missing</Key></Object><Object><Key>../bad</Key></Object></Delete>";
  HttpResult r = client_->Send("POST", "/del?delete", body);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "InvalidRequest");  // neither Content-MD5 nor a checksum
  r = client_->Send("POST", "/del?delete", body, {{"content-md5", Md5Base64("other")}});
  EXPECT_EQ(r.Xml("Code"), "BadDigest");

  r = client_->Send("POST", "/del?delete", body, {{"content-md5", Md5Base64(body)}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(Count(r.body, "<Deleted>"), 3u);
  EXPECT_EQ(Count(r.body, "<Error>"), 1u);
  EXPECT_EQ(api_.object_count("del"), 1u);

  std::string quiet = "<Delete><Quiet>true</Quiet><Object><Key>c</Key></Object></Delete>";
  Result<std::string> crc = ChecksumBase64("crc32", quiet);
  ASSERT_TRUE(crc.ok());
  r = client_->Send("POST", "/del?delete", quiet, {{"x-amz-checksum-crc32", *crc}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(Count(r.body, "<Deleted>"), 0u);
  EXPECT_EQ(api_.object_count("del"), 0u);

  std::string malformed = "<Delete><Object><Key>a</Key></Delete>";
  r = client_->Send("POST", "/del?delete", malformed, {{"content-md5", Md5Base64(malformed)}});
  EXPECT_EQ(r.Xml("Code"), "MalformedXML");

  std::string many = "<Delete>";
  for (int i = 0; i < 1001; ++i) many += "<Object><Key>k" + std::to_string(i) + "</Key></Object>";
  many += "</Delete>";
  r = client_->Send("POST", "/del?delete", many, {{"content-md5", Md5Base64(many)}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.Xml("Code"), "MalformedXML");
}

}  // namespace
}  // namespace granary::s3::testing

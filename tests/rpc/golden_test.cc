// Wire compatibility: testdata/v1_frames.bin holds frames written by the first version of the
// protocol (a Hello, a PUT with a payload, a chunked PUT, a GET response with a payload and an
// error response). The current code must decode every one to the same fields, and encode the
// same frames to the same bytes. Never regenerate the file to make this test pass: a change that
// breaks it breaks every client in the field. (GRANARY_WRITE_GOLDEN=1 writes it, for a new file.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "proto/object.pb.h"
#include "rpc/frame.h"

namespace granary::rpc {
namespace {

const char* GoldenPath() { return GRANARY_SOURCE_DIR "/tests/rpc/testdata/v1_frames.bin"; }

std::string Frame(const proto::FrameHeader& h, std::string_view payload, bool chunked) {
  std::string out;
  EXPECT_TRUE(EncodeFrameStart(h, payload.size(), chunked, {}, &out).ok());
  if (!chunked) return out + std::string(payload);
  // Chunks of 3 bytes, then the ending chunk.
  for (size_t i = 0; i < payload.size(); i += 3) {
    std::string_view c = payload.substr(i, 3);
    char len[4];
    EncodeChunkLength(static_cast<uint32_t>(c.size()), len);
    out.append(len, 4);
    out += c;
  }
  out.append(4, '\0');
  return out;
}

proto::FrameHeader Request(uint64_t id, uint32_t method, const google::protobuf::MessageLite& m) {
  proto::FrameHeader h;
  h.set_request_id(id);
  h.set_method(method);
  h.set_body(m.SerializeAsString());
  return h;
}

std::string GoldenFrames() {
  std::string out;
  proto::HelloRequest hello;
  hello.set_access_key("GRANARYACCESSKEY");
  hello.set_unix_time(1700000000);
  hello.set_nonce("00112233445566778899aabbccddeeff");
  hello.set_signature("52d602f22a7d1e246329c237f542ab6ff8a07a793f75c91ea55c5b442a54c165");
  out += Frame(Request(1, proto::HELLO, hello), "", false);

  proto::PutRequest put;
  put.set_bucket("bucket");
  put.set_key("dir/object.bin");
  put.mutable_options()->set_content_type("application/octet-stream");
  put.mutable_options()->set_expected_size(11);
  out += Frame(Request(2, proto::PUT, put), "hello world", false);

  put.mutable_options()->set_expected_size(UINT64_MAX);
  out += Frame(Request(3, proto::PUT, put), "chunked bytes", true);

  proto::GetResponse get;
  get.mutable_info()->set_bucket("bucket");
  get.mutable_info()->set_key("dir/object.bin");
  get.mutable_info()->set_size(11);
  get.mutable_info()->set_etag("5eb63bbbe01eeed093cb22bb8f5acdc3");
  get.mutable_info()->set_version(7);
  get.set_offset(6);
  get.set_length(5);
  proto::FrameHeader response;
  response.set_request_id(4);
  response.set_method(proto::GET);
  response.set_response(true);
  response.set_body(get.SerializeAsString());
  out += Frame(response, "world", false);

  proto::FrameHeader error;
  error.set_request_id(5);
  error.set_method(proto::HEAD_BUCKET);
  error.set_response(true);
  StatusToHeader(Status::NoSuchBucket("bucket \"nope\" does not exist"), &error);
  out += Frame(error, "", false);
  return out;
}

std::string ReadGolden() {
  std::ifstream in(GoldenPath(), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(GoldenTest, V1FramesStillDecode) {
  if (std::getenv("GRANARY_WRITE_GOLDEN") != nullptr) {
    std::ofstream(GoldenPath(), std::ios::binary) << GoldenFrames();
  }
  std::string data = ReadGolden();
  ASSERT_FALSE(data.empty()) << "missing " << GoldenPath();
  std::vector<DecodedFrame> frames;
  std::string_view rest = data;
  while (!rest.empty()) {
    Result<DecodedFrame> f = DecodeFrame(rest);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    rest.remove_prefix(f->frame_bytes);
    frames.push_back(std::move(*f));
  }
  ASSERT_EQ(frames.size(), 5u);

  proto::HelloRequest hello;
  ASSERT_EQ(frames[0].header.method(), 1u);
  ASSERT_TRUE(hello.ParseFromString(frames[0].header.body()));
  EXPECT_EQ(hello.access_key(), "GRANARYACCESSKEY");
  EXPECT_EQ(hello.unix_time(), 1700000000);
  EXPECT_EQ(hello.nonce(), "00112233445566778899aabbccddeeff");

  proto::PutRequest put;
  EXPECT_EQ(frames[1].header.request_id(), 2u);
  EXPECT_EQ(frames[1].header.method(), 20u);
  ASSERT_TRUE(put.ParseFromString(frames[1].header.body()));
  EXPECT_EQ(put.bucket(), "bucket");
  EXPECT_EQ(put.key(), "dir/object.bin");
  EXPECT_EQ(put.options().content_type(), "application/octet-stream");
  EXPECT_EQ(put.options().expected_size(), 11u);
  EXPECT_EQ(frames[1].payload, "hello world");

  EXPECT_TRUE(frames[2].prefix.chunked());
  EXPECT_EQ(frames[2].payload, "chunked bytes");

  proto::GetResponse get;
  EXPECT_TRUE(frames[3].header.response());
  EXPECT_EQ(frames[3].header.method(), 21u);
  EXPECT_EQ(frames[3].header.status_code(), 0u);
  ASSERT_TRUE(get.ParseFromString(frames[3].header.body()));
  EXPECT_EQ(get.info().version(), 7u);
  EXPECT_EQ(get.offset(), 6u);
  EXPECT_EQ(get.length(), 5u);
  EXPECT_EQ(frames[3].payload, "world");

  EXPECT_EQ(frames[4].header.method(), 12u);
  EXPECT_EQ(StatusFromWire(frames[4].header.status_code(), frames[4].header.status_message()),
            Status::NoSuchBucket("bucket \"nope\" does not exist"));

  // And today's encoder writes the same bytes.
  EXPECT_TRUE(GoldenFrames() == data);
}

}  // namespace
}  // namespace granary::rpc

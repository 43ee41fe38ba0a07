// The frame codec: round trips, chunked payloads, and every way a frame can be malformed.
#include "rpc/frame.h"

#include <gtest/gtest.h>

#include "rpc/socket.h"

namespace granary::rpc {
namespace {

proto::FrameHeader SampleHeader() {
  proto::FrameHeader h;
  h.set_request_id(42);
  h.set_method(21);
  h.set_body(
      std::string("\x0a\x03"
                  "abc",
                  5));
  return h;
}

std::string Encode(const proto::FrameHeader& h, std::string_view payload) {
  std::string out;
  EXPECT_TRUE(EncodeFrameStart(h, payload.size(), false, {}, &out).ok());
  out += payload;
  return out;
}

TEST(FrameTest, RoundTrip) {
  std::string frame = Encode(SampleHeader(), "payload bytes");
  Result<DecodedFrame> d = DecodeFrame(frame);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->header.request_id(), 42u);
  EXPECT_EQ(d->header.method(), 21u);
  EXPECT_EQ(d->header.body(), SampleHeader().body());
  EXPECT_EQ(d->payload, "payload bytes");
  EXPECT_EQ(d->frame_bytes, frame.size());
  EXPECT_FALSE(d->prefix.chunked());
  // The prefix is little-endian with the magic first.
  EXPECT_EQ(frame.substr(0, 4), "GRNY");
  EXPECT_EQ(frame[4], 1);
  EXPECT_EQ(frame[5], 0);
}

TEST(FrameTest, ChunkedPayload) {
  std::string frame;
  ASSERT_TRUE(EncodeFrameStart(SampleHeader(), 0, true, {}, &frame).ok());
  for (std::string_view chunk : {"abc", "defgh"}) {
    char len[4];
    EncodeChunkLength(static_cast<uint32_t>(chunk.size()), len);
    frame.append(len, 4);
    frame += chunk;
  }
  frame.append(4, '\0');
  Result<DecodedFrame> d = DecodeFrame(frame);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->prefix.chunked());
  EXPECT_EQ(d->payload, "abcdefgh");
  EXPECT_EQ(d->frame_bytes, frame.size());
  // Without its ending chunk the frame is truncated.
  EXPECT_EQ(DecodeFrame(frame.substr(0, frame.size() - 4)).status().code(), Code::kCorruption);
}

TEST(FrameTest, EveryTruncationIsCorruption) {
  std::string frame = Encode(SampleHeader(), "0123456789");
  for (size_t n = 0; n < frame.size(); ++n) {
    Result<DecodedFrame> d = DecodeFrame(frame.substr(0, n));
    EXPECT_EQ(d.status().code(), Code::kCorruption) << "length " << n;
  }
}

TEST(FrameTest, EveryFlippedHeaderBitIsCaught) {
  std::string frame = Encode(SampleHeader(), "");
  for (size_t byte = 0; byte < frame.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = frame;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      Result<DecodedFrame> d = DecodeFrame(bad);
      EXPECT_FALSE(d.ok()) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(FrameTest, BadMagicVersionFlags) {
  std::string frame = Encode(SampleHeader(), "");
  std::string bad = frame;
  bad[0] = 'X';
  EXPECT_EQ(DecodeFrame(bad).status().code(), Code::kCorruption);
  bad = frame;
  bad[4] = 2;  // version 2
  Result<DecodedFrame> d = DecodeFrame(bad);
  EXPECT_EQ(d.status().code(), Code::kNotSupported);
  EXPECT_NE(d.status().message().find("version 2"), std::string::npos);
  bad = frame;
  bad[6] = 2;  // unknown flag
  EXPECT_EQ(DecodeFrame(bad).status().code(), Code::kCorruption);
}

TEST(FrameTest, OversizedHeaderAndPayloadAreRefused) {
  FrameLimits limits;
  limits.max_header_bytes = 64;
  limits.max_payload_bytes = 100;
  proto::FrameHeader big = SampleHeader();
  big.set_body(std::string(100, 'x'));
  std::string out;
  EXPECT_EQ(EncodeFrameStart(big, 0, false, limits, &out).code(), Code::kInvalidArgument);
  EXPECT_EQ(EncodeFrameStart(SampleHeader(), 101, false, limits, &out).code(),
            Code::kInvalidArgument);

  // A prefix that claims too much is refused before anything is read or allocated.
  std::string frame = Encode(big, "");
  EXPECT_EQ(DecodeFrame(frame, limits).status().code(), Code::kInvalidArgument);
  FramePrefix huge;
  huge.payload_length = 1ull << 62;
  char prefix[kPrefixBytes];
  EncodePrefix(huge, "h", prefix);
  EXPECT_EQ(DecodePrefix(prefix, FrameLimits()).status().code(), Code::kInvalidArgument);
  FramePrefix empty_header;
  EncodePrefix(empty_header, "", prefix);
  EXPECT_EQ(DecodePrefix(prefix, FrameLimits()).status().code(), Code::kCorruption);
}

TEST(FrameTest, HeaderThatDoesNotParse) {
  std::string garbage = "\xff\xff\xff\xff";
  FramePrefix p;
  std::string frame(kPrefixBytes, '\0');
  EncodePrefix(p, garbage, frame.data());
  frame += garbage;
  EXPECT_EQ(DecodeFrame(frame).status().code(), Code::kCorruption);
}

TEST(FrameTest, StatusCrossesIntact) {
  for (uint32_t c = 0; c <= static_cast<uint32_t>(Code::kStaleMap); ++c) {
    Status s = c == 0 ? Status::OK() : Status(static_cast<Code>(c), "message " + std::to_string(c));
    proto::FrameHeader h;
    StatusToHeader(s, &h);
    EXPECT_EQ(StatusFromWire(h.status_code(), h.status_message()), s);
  }
  Status unknown = StatusFromWire(200, "from the future");
  EXPECT_EQ(unknown.code(), Code::kInternal);
  EXPECT_NE(unknown.message().find("200"), std::string::npos);
}

TEST(FrameTest, ParseHostPort) {
  Result<HostPort> hp = ParseHostPort("127.0.0.1:9100");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 9100);
  hp = ParseHostPort("[::1]:0");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  for (const char* bad :
       {"", "host", ":80", "host:", "host:65536", "host:x", "::1:80", "[::1:80"}) {
    EXPECT_EQ(ParseHostPort(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace granary::rpc

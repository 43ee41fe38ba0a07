// The native protocol's frame: a fixed 24-byte little-endian prefix, a protobuf FrameHeader
// (proto/rpc.proto) and a raw payload. docs/formats/rpc.md describes every byte.
//
//   offset  size  field
//        0     4  magic "GRNY" (0x594E5247 little-endian)
//        4     2  version (1)
//        6     2  flags (bit 0: chunked payload; other bits must be 0)
//        8     4  header_length
//       12     8  payload_length (0 when chunked)
//       20     4  CRC32C of bytes [0, 20) of the prefix followed by the header bytes
//       24     -  header (header_length bytes), then the payload
//
// A chunked payload is a sequence of chunks, each a u32 little-endian length and that many
// bytes, ended by a chunk of length 0. It lets a writer stream an object of unknown size.
//
// Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "granary/object_api.h"
#include "proto/rpc.pb.h"

namespace granary::rpc {

inline constexpr uint32_t kFrameMagic = 0x594E5247;  // "GRNY" on the wire
inline constexpr uint16_t kFrameVersion = 1;
inline constexpr uint16_t kFlagChunked = 1;
inline constexpr size_t kPrefixBytes = 24;
inline constexpr uint32_t kMaxChunkBytes = 16u << 20;  // one chunk of a chunked payload
inline constexpr uint32_t kHelloMethod = 1;            // proto::ObjectMethod::HELLO

// What a peer accepts; a frame beyond these closes the connection.
struct FrameLimits {
  uint32_t max_header_bytes = 1u << 20;
  uint64_t max_payload_bytes = kMaxSinglePutBytes;  // one PUT or part, 5 GiB
};

struct FramePrefix {
  uint16_t version = kFrameVersion;
  uint16_t flags = 0;
  uint32_t header_length = 0;
  uint64_t payload_length = 0;
  uint32_t crc = 0;
  bool chunked() const { return (flags & kFlagChunked) != 0; }
};

// Writes the 24 prefix bytes of a frame whose header is `header` (the CRC covers both).
void EncodePrefix(const FramePrefix& prefix, std::string_view header, char out[kPrefixBytes]);

// Parses and checks the prefix: magic, version, flags and the limits. kCorruption for a
// malformed prefix, kNotSupported for an unknown version, kInvalidArgument for sizes beyond
// `limits`. The header's CRC is checked by DecodeHeader.
Result<FramePrefix> DecodePrefix(const char prefix_bytes[kPrefixBytes], const FrameLimits& limits);

// Checks the CRC of `prefix_bytes` + `header_bytes` and parses the header. kCorruption if either
// fails.
Status DecodeHeader(const char prefix_bytes[kPrefixBytes], const FramePrefix& prefix,
                    std::string_view header_bytes, proto::FrameHeader* header);

// Replaces `out` with the prefix and serialized header of a frame (its capacity is reused).
// kInvalidArgument if the header or payload exceed `limits`.
Status EncodeFrameStart(const proto::FrameHeader& header, uint64_t payload_length, bool chunked,
                        const FrameLimits& limits, std::string* out);

// The 4-byte length that starts a chunk of a chunked payload.
void EncodeChunkLength(uint32_t length, char out[4]);
uint32_t DecodeChunkLength(const char in[4]);

// A whole frame decoded from memory (tests, tools): the header and the payload (chunks joined).
struct DecodedFrame {
  FramePrefix prefix;
  proto::FrameHeader header;
  std::string payload;
  size_t frame_bytes = 0;  // bytes of `data` the frame occupied
};
// Decodes the frame at the start of `data`. kCorruption also for a truncated frame.
Result<DecodedFrame> DecodeFrame(std::string_view data, const FrameLimits& limits = {});

// A Status as it crosses the wire, and back. Codes this build does not know arrive as kInternal
// with the code named in the message.
void StatusToHeader(const Status& status, proto::FrameHeader* header);
Status StatusFromWire(uint32_t code, std::string_view message);

}  // namespace granary::rpc

#include "rpc/frame.h"

#include <cstdio>
#include <cstring>

#include "common/crc32c.h"

namespace granary::rpc {
namespace {

void Put16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}
void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint16_t Get16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | static_cast<uint8_t>(p[1]) << 8);
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

constexpr size_t kCrcOffset = 20;
constexpr Code kLastKnownCode = Code::kStaleMap;

}  // namespace

void EncodePrefix(const FramePrefix& prefix, std::string_view header, char out[kPrefixBytes]) {
  Put32(out, kFrameMagic);
  Put16(out + 4, prefix.version);
  Put16(out + 6, prefix.flags);
  Put32(out + 8, static_cast<uint32_t>(header.size()));
  Put64(out + 12, prefix.payload_length);
  uint32_t crc = crc32c::Extend(crc32c::Value(out, kCrcOffset), header.data(), header.size());
  Put32(out + kCrcOffset, crc);
}

Result<FramePrefix> DecodePrefix(const char prefix_bytes[kPrefixBytes], const FrameLimits& limits) {
  uint32_t magic = Get32(prefix_bytes);
  if (magic != kFrameMagic) {
    return Status::Corruption("frame magic is 0x" + [&] {
      char buf[16];
      snprintf(buf, sizeof(buf), "%08x", magic);
      return std::string(buf);
    }() + ", not a Granary frame (0x594e5247)");
  }
  FramePrefix prefix;
  prefix.version = Get16(prefix_bytes + 4);
  prefix.flags = Get16(prefix_bytes + 6);
  prefix.header_length = Get32(prefix_bytes + 8);
  prefix.payload_length = Get64(prefix_bytes + 12);
  prefix.crc = Get32(prefix_bytes + kCrcOffset);
  if (prefix.version != kFrameVersion) {
    return Status::NotSupported("frame version " + std::to_string(prefix.version) +
                                " is not supported; this build speaks version " +
                                std::to_string(kFrameVersion));
  }
  if ((prefix.flags & ~kFlagChunked) != 0) {
    return Status::Corruption("frame flags 0x" + std::to_string(prefix.flags) +
                              " set unknown bits");
  }
  if (prefix.header_length == 0) return Status::Corruption("frame header length is 0");
  if (prefix.header_length > limits.max_header_bytes) {
    return Status::InvalidArgument("frame header of " + std::to_string(prefix.header_length) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits.max_header_bytes));
  }
  if (prefix.chunked() && prefix.payload_length != 0) {
    return Status::Corruption("a chunked frame must state payload length 0, not " +
                              std::to_string(prefix.payload_length));
  }
  if (prefix.payload_length > limits.max_payload_bytes) {
    return Status::InvalidArgument("frame payload of " + std::to_string(prefix.payload_length) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits.max_payload_bytes));
  }
  return prefix;
}

Status DecodeHeader(const char prefix_bytes[kPrefixBytes], const FramePrefix& prefix,
                    std::string_view header_bytes, proto::FrameHeader* header) {
  if (header_bytes.size() != prefix.header_length) {
    return Status::Internal("header bytes do not match the prefix's header length");
  }
  uint32_t crc = crc32c::Extend(crc32c::Value(prefix_bytes, kCrcOffset), header_bytes.data(),
                                header_bytes.size());
  if (crc != prefix.crc) {
    return Status::Corruption("frame header failed its CRC32C check");
  }
  if (!header->ParseFromArray(header_bytes.data(), static_cast<int>(header_bytes.size()))) {
    return Status::Corruption("frame header does not parse as a FrameHeader");
  }
  return Status::OK();
}

Status EncodeFrameStart(const proto::FrameHeader& header, uint64_t payload_length, bool chunked,
                        const FrameLimits& limits, std::string* out) {
  out->resize(kPrefixBytes);
  if (!header.AppendToString(out)) return Status::Internal("frame header did not serialize");
  size_t header_length = out->size() - kPrefixBytes;
  if (header_length > limits.max_header_bytes) {
    return Status::InvalidArgument("request header of " + std::to_string(header_length) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits.max_header_bytes) +
                                   "; split the request (fewer keys or smaller metadata)");
  }
  if (chunked) payload_length = 0;
  if (payload_length > limits.max_payload_bytes) {
    return Status::InvalidArgument("payload of " + std::to_string(payload_length) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits.max_payload_bytes));
  }
  FramePrefix prefix;
  prefix.flags = chunked ? kFlagChunked : 0;
  prefix.payload_length = payload_length;
  // A header of 0 bytes would be an all-default FrameHeader; the decoder refuses length 0, so
  // such a header is never produced: method or response is always set.
  EncodePrefix(prefix, std::string_view(*out).substr(kPrefixBytes), out->data());
  return Status::OK();
}

void EncodeChunkLength(uint32_t length, char out[4]) { Put32(out, length); }
uint32_t DecodeChunkLength(const char in[4]) { return Get32(in); }

Result<DecodedFrame> DecodeFrame(std::string_view data, const FrameLimits& limits) {
  if (data.size() < kPrefixBytes) {
    return Status::Corruption("frame truncated: " + std::to_string(data.size()) +
                              " bytes, the prefix alone is 24");
  }
  DecodedFrame frame;
  ASSIGN_OR_RETURN(frame.prefix, DecodePrefix(data.data(), limits));
  size_t pos = kPrefixBytes;
  if (data.size() - pos < frame.prefix.header_length) {
    return Status::Corruption("frame truncated inside its header");
  }
  RETURN_IF_ERROR(DecodeHeader(data.data(), frame.prefix,
                               data.substr(pos, frame.prefix.header_length), &frame.header));
  pos += frame.prefix.header_length;
  if (!frame.prefix.chunked()) {
    if (data.size() - pos < frame.prefix.payload_length) {
      return Status::Corruption("frame truncated inside its payload");
    }
    frame.payload.assign(data.substr(pos, frame.prefix.payload_length));
    pos += frame.prefix.payload_length;
  } else {
    for (;;) {
      if (data.size() - pos < 4) return Status::Corruption("frame truncated inside a chunk length");
      uint32_t n = DecodeChunkLength(data.data() + pos);
      pos += 4;
      if (n == 0) break;
      if (n > kMaxChunkBytes) {
        return Status::Corruption("chunk of " + std::to_string(n) + " bytes exceeds the limit");
      }
      if (data.size() - pos < n) return Status::Corruption("frame truncated inside a chunk");
      if (frame.payload.size() + n > limits.max_payload_bytes) {
        return Status::InvalidArgument("chunked payload exceeds the limit of " +
                                       std::to_string(limits.max_payload_bytes) + " bytes");
      }
      frame.payload.append(data.substr(pos, n));
      pos += n;
    }
  }
  frame.frame_bytes = pos;
  return frame;
}

void StatusToHeader(const Status& status, proto::FrameHeader* header) {
  header->set_status_code(static_cast<uint32_t>(status.code()));
  if (status.ok()) {
    header->clear_status_message();
  } else {
    header->set_status_message(status.message());
  }
}

Status StatusFromWire(uint32_t code, std::string_view message) {
  if (code == 0) return Status::OK();
  if (code > static_cast<uint32_t>(kLastKnownCode)) {
    return Status::Internal("peer sent unknown error code " + std::to_string(code) + ": " +
                            std::string(message));
  }
  return Status(static_cast<Code>(code), std::string(message));
}

}  // namespace granary::rpc

// A request body on its way in: aws-chunked decoding (with chunk signatures), the
// x-amz-content-sha256 check, and the x-amz-checksum-* header check, each where the request
// asks for it. Payload bytes must be treated as unverified until Finish() returns OK: a caller
// commits nothing before that.
//
// Thread-safety: one BodyDecoder belongs to one request; calls may come from different threads
// one after another, never at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "s3/auth.h"
#include "s3/request.h"

namespace granary::s3 {

class BodyChecksum;

class BodyDecoder {
 public:
  // Reads the payload mode from `auth` and an x-amz-checksum-<algorithm> header from `request`
  // (crc32, crc32c, sha1 or sha256; others are not checked). InvalidDigest / InvalidRequest
  // when such a header is malformed.
  [[nodiscard]] static Result<std::unique_ptr<BodyDecoder>> Make(const Request& request,
                                                                 const AuthContext& auth);
  ~BodyDecoder();

  // Decodes the next bytes of the raw body. `*out` receives the payload bytes: `raw` itself
  // when the body is not aws-chunked, else a view of an internal buffer valid until the next
  // call.
  [[nodiscard]] Status Feed(std::string_view raw, std::string_view* out);

  // After the last raw byte: the framing is complete and every digest matches. Errors:
  // IncompleteBody / SignatureDoesNotMatch (chunks), XAmzContentSHA256Mismatch, BadDigest.
  [[nodiscard]] Status Finish();

  uint64_t payload_bytes() const { return payload_bytes_; }
  // "x-amz-checksum-crc32" and its base64 value when one was checked (header or trailer), to
  // echo in the response; empty otherwise.
  const std::pair<std::string, std::string>& checksum() const { return checksum_echo_; }

 private:
  BodyDecoder() = default;

  std::unique_ptr<ChunkDecoder> chunks_;
  std::unique_ptr<PayloadHasher> hasher_;
  std::unique_ptr<BodyChecksum> checksum_;
  std::string scratch_;
  uint64_t payload_bytes_ = 0;
  std::pair<std::string, std::string> checksum_echo_;
};

}  // namespace granary::s3

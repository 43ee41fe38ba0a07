// S3 authentication: AWS Signature Version 4 in the Authorization header and in presigned URLs,
// the payload modes of x-amz-content-sha256 (a digest, UNSIGNED-PAYLOAD and the aws-chunked
// STREAMING-* bodies with their chunk-signature chain and trailers), and the digests the gateway
// needs (SHA-256, MD5, base64, hex).
//
// Errors: every failure is a Status whose message starts with the S3 error code, then ": " and
// an explanation ("SignatureDoesNotMatch: ..."); the text before the first ':' is what the
// gateway puts in <Code>. The Status code chooses the HTTP status:
//   kPermissionDenied  403  AccessDenied (anonymous request)
//   kUnauthenticated   403  SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied (expired or
//                           not yet valid presigned URL), RequestTimeTooSkewed
//   kInvalidArgument   400  AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
//                           InvalidArgument, InvalidRequest, IncompleteBody, MalformedTrailerError
//   kBadDigest         400  XAmzContentSHA256Mismatch, BadDigest (trailer checksum)
//   kNotSupported      501  NotImplemented
//
// Thread-safety: the free functions are thread-safe. ChunkDecoder, PayloadHasher, Sha256 and
// Md5 objects belong to one request and must not be used from two threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/credentials.h"
#include "common/crypto.h"
#include "common/status.h"

namespace granary::s3 {

// An incremental x-amz-checksum-<algorithm> over a body: CRC32 (IEEE), CRC32C, CRC64/NVME,
// SHA-1 or SHA-256.
class PayloadChecksum {
 public:
  // `algorithm`: "crc32", "crc32c", "crc64nvme", "sha1" or "sha256", or the header name
  // ("x-amz-checksum-crc32"), any case; InvalidArgument otherwise.
  [[nodiscard]] static Result<std::unique_ptr<PayloadChecksum>> Create(std::string_view algorithm);
  virtual ~PayloadChecksum() = default;
  virtual void Update(std::string_view data) = 0;
  // The header value: base64 of the big-endian digest. Ends the computation.
  virtual std::string Base64() = 0;
};

// The value of an x-amz-checksum-<algorithm> header for `data`; InvalidArgument for an unknown
// algorithm.
[[nodiscard]] Result<std::string> ChecksumBase64(std::string_view algorithm, std::string_view data);

// One request as received, before the body. Header names lower-case; repeated headers appear
// as separate entries in arrival order. `target` is the raw request-target (path and query,
// still percent-encoded, exactly as on the request line).
struct RequestView {
  std::string_view method;
  std::string_view target;
  std::vector<std::pair<std::string, std::string>> headers;
};

enum class PayloadMode {
  kUnsigned,                // UNSIGNED-PAYLOAD: the body is not covered by the signature
  kSha256,                  // a hex SHA-256 of the body (PayloadHasher checks it)
  kStreamingSigned,         // STREAMING-AWS4-HMAC-SHA256-PAYLOAD (ChunkDecoder)
  kStreamingUnsigned,       // STREAMING-UNSIGNED-PAYLOAD-TRAILER (ChunkDecoder)
  kStreamingSignedTrailer,  // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (ChunkDecoder)
};

// True for the three aws-chunked modes, whose body must go through a ChunkDecoder.
inline bool IsStreaming(PayloadMode mode) {
  return mode == PayloadMode::kStreamingSigned || mode == PayloadMode::kStreamingUnsigned ||
         mode == PayloadMode::kStreamingSignedTrailer;
}

struct AuthContext {
  std::string access_key;
  PayloadMode payload_mode = PayloadMode::kUnsigned;
  std::string payload_sha256;  // kSha256: the hex digest the body must have (lower case)
  // For streaming modes: what the ChunkDecoder needs to verify chunk signatures.
  std::string signing_key;               // derived key (binary)
  std::string seed_signature;            // hex signature of the headers
  std::string amz_date;                  // X-Amz-Date (yyyymmddThhmmssZ)
  std::string scope;                     // date/region/s3/aws4_request
  uint64_t decoded_length = UINT64_MAX;  // x-amz-decoded-content-length when given
  bool presigned = false;
  // Trailer modes: the checksum header the trailer carries, as declared by the x-amz-trailer
  // request header ("x-amz-checksum-crc32"), lower case; empty when none was declared.
  std::string trailer;
};

// Verifies SigV4 in the Authorization header or in the query (presigned URL), with
// `now_unix_s` for the clock-skew (15 min) and presigned expiry checks. Anonymous requests,
// unknown keys, wrong signatures, expired URLs, malformed Authorization headers: a Status with
// code kUnauthenticated or kPermissionDenied (anonymous -> kPermissionDenied "AccessDenied")
// and a message that names the S3 error (e.g. "SignatureDoesNotMatch: ...",
// "InvalidAccessKeyId: ...", "AccessDenied: request has expired",
// "AuthorizationHeaderMalformed: ...", "RequestTimeTooSkewed: ...") so the gateway can emit the
// exact S3 code: the text before the first ':' of the message is the S3 error code.
// The credential scope may name any region (clients sign for the region they are configured
// with); the service must be "s3". Thread-safe.
[[nodiscard]] Result<AuthContext> Authenticate(const RequestView& request,
                                               const SecretLookup& secrets, int64_t now_unix_s);

// Decodes an aws-chunked body ("<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n ...
// 0;...\r\n[trailers]\r\n"; the closing empty line may be missing) incrementally, verifying each
// chunk's signature (chained from the seed) in the signed modes and the trailer signature /
// x-amz-checksum-* trailer where present. Memory is bounded: at most one header or trailer line (4
// KiB) is buffered; chunk data passes straight through. Bytes appended to `out` are authenticated
// only once their chunk's signature has been checked, at the latest by Finish(): a caller must
// discard everything it received if Feed() or Finish() fails.
class ChunkDecoder {
 public:
  explicit ChunkDecoder(const AuthContext& auth);
  ~ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // Consumes `in` (any split of the raw body) and appends decoded payload bytes to `out`.
  // A malformed framing or a bad chunk signature is an error (message
  // "SignatureDoesNotMatch: ..." or "IncompleteBody: ..." / "InvalidRequest: ..."); a trailer
  // checksum that does not match is "BadDigest: ..." (kBadDigest). After an error every later
  // call returns the same error.
  [[nodiscard]] Status Feed(std::string_view in, std::string* out);

  // After the raw body ended: OK only if the final zero-length chunk (and trailers) arrived and
  // the decoded length matches x-amz-decoded-content-length when that was given.
  [[nodiscard]] Status Finish();

  // Decoded payload bytes so far.
  uint64_t decoded_bytes() const { return decoded_; }

  // The trailer headers received (name lower case, value trimmed), without
  // x-amz-trailer-signature; complete once Finish() returned OK.
  const std::vector<std::pair<std::string, std::string>>& trailers() const { return trailers_; }

 private:
  enum class State { kHeader, kData, kDataEnd, kTrailer, kDone, kFailed };

  Status Fail(Status status);
  Status ParseChunkHeader(std::string_view line);
  Status EndChunk();
  Status ParseTrailerLine(std::string_view line);
  Status FinishTrailers();
  // Appends `in[*pos..]` up to CRLF into line_; true once a whole line is there.
  Result<bool> TakeLine(std::string_view in, size_t* pos);

  AuthContext auth_;
  bool signed_chunks_;
  State state_ = State::kHeader;
  Status error_;
  std::string line_;
  uint64_t chunk_remaining_ = 0;
  uint64_t chunk_size_ = 0;
  uint64_t decoded_ = 0;
  std::string chunk_signature_;                // declared signature of the current chunk (hex)
  std::string previous_signature_;             // the chain: seed, then each chunk's signature
  Sha256 chunk_hash_;                          // of the current chunk's data
  std::unique_ptr<PayloadChecksum> checksum_;  // over the decoded data, for the declared trailer
  std::vector<std::pair<std::string, std::string>> trailers_;
  std::string trailer_signature_;
  size_t trailer_bytes_ = 0;
};

// Incremental SHA-256 of the body for PayloadMode::kSha256: Finish() compares with the
// expected hex digest -> "XAmzContentSHA256Mismatch: ..." (code kBadDigest) on mismatch.
class PayloadHasher {
 public:
  explicit PayloadHasher(std::string expected_hex);
  ~PayloadHasher();
  PayloadHasher(const PayloadHasher&) = delete;
  PayloadHasher& operator=(const PayloadHasher&) = delete;

  void Update(std::string_view data);
  // REQUIRES: called once, after the last Update().
  [[nodiscard]] Status Finish();

 private:
  std::string expected_hex_;
  Sha256 hash_;
};

// ---- Signing (clients, tests, benchmarks) ---------------------------------------------------

// SigV4 signing key: HMAC chain over "AWS4"+secret, date (yyyymmdd), region, service,
// "aws4_request". Raw 32 bytes.
std::string DeriveSigningKey(std::string_view secret_key, std::string_view date,
                             std::string_view region, std::string_view service);

// The AWS encoding of a URI component: unreserved characters (A-Z a-z 0-9 - _ . ~) as they are,
// every other byte as %XY (upper-case hex); '/' kept as is when `keep_slash`.
std::string UriEncode(std::string_view raw, bool keep_slash);

// The canonical query string of a raw (still encoded) query: each parameter decoded ('+' is a
// space) and re-encoded with UriEncode, sorted by name then value, "name=value" joined by '&'.
// Parameters named `skip` (e.g. "X-Amz-Signature") are left out. InvalidArgument on a bad
// percent escape.
[[nodiscard]] Result<std::string> CanonicalQueryString(std::string_view raw_query,
                                                       std::string_view skip = {});

struct SignOptions {
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  int64_t now_unix_s = 0;
  // x-amz-content-sha256: a hex SHA-256 of the body, "UNSIGNED-PAYLOAD" or a STREAMING-* mode.
  std::string payload_sha256 = "UNSIGNED-PAYLOAD";
};

struct SignedRequest {
  std::string authorization;  // the Authorization header value
  std::string signature;      // hex; the seed signature of a streaming upload
  std::string amz_date;       // yyyymmddThhmmssZ
  std::string scope;          // date/region/s3/aws4_request
  std::string signing_key;    // raw, for ChunkSigner
};

// Signs a request for the Authorization header. Sets x-amz-date and x-amz-content-sha256 in
// `headers` (replacing any present) and signs every header there; names must be lower case and
// include "host". Returns the Authorization value to add. InvalidArgument on a bad target.
[[nodiscard]] Result<SignedRequest> SignRequest(
    std::string_view method, std::string_view target,
    std::vector<std::pair<std::string, std::string>>* headers, const SignOptions& options);

// Returns `target` with the presigned-URL query parameters (X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders=host, X-Amz-Signature) appended, signed for
// `host` with an UNSIGNED-PAYLOAD body. REQUIRES: 1 <= expires_s <= 604800.
[[nodiscard]] Result<std::string> PresignTarget(std::string_view method, std::string_view target,
                                                std::string_view host, int64_t expires_s,
                                                const SignOptions& options);

// Frames a body as aws-chunked with the signature chain that starts at `signed_request`'s seed
// signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).
class ChunkSigner {
 public:
  explicit ChunkSigner(const SignedRequest& signed_request);
  // "<hex-size>;chunk-signature=<sig>\r\n<data>\r\n". An empty `data` is the final chunk
  // ("0;chunk-signature=<sig>\r\n"), to be followed by Trailer() or "\r\n".
  std::string Chunk(std::string_view data);
  // The trailer section after the final chunk: each "name:value\r\n", then
  // "x-amz-trailer-signature:<sig>\r\n" and the closing "\r\n".
  std::string Trailer(const std::vector<std::pair<std::string, std::string>>& trailers);

 private:
  SignedRequest request_;
  std::string previous_;
};

}  // namespace granary::s3

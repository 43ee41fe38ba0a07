// Pieces of SigV4 shared by verification (auth.cc), signing (auth_sign.cc) and the chunk
// decoder (chunked.cc). Not for use outside src/s3/auth*.cc and chunked.cc.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace granary::s3::internal {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kStreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingSignedTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";

// Seconds since the epoch as yyyymmddThhmmssZ.
std::string FormatAmzDate(int64_t unix_s);
// Parses yyyymmddThhmmssZ; InvalidArgument unless exactly that form with a valid date.
[[nodiscard]] Result<int64_t> ParseAmzDate(std::string_view text);
// Parses an RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"; "UTC" and "+0000" are
// accepted for the zone); InvalidArgument otherwise.
[[nodiscard]] Result<int64_t> ParseHttpDate(std::string_view text);

// Decodes %XY escapes (and '+' as a space when `plus_is_space`); InvalidArgument on a bad escape.
[[nodiscard]] Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Splits an origin-form (or absolute-form) request-target into its path and its query (without
// the '?'). InvalidArgument if there is no path starting with '/'.
[[nodiscard]] Result<std::pair<std::string_view, std::string_view>> SplitTarget(
    std::string_view target);

// A header value as SigV4 signs it: leading and trailing blanks removed, each run of blanks
// inside replaced by one space.
std::string CanonicalHeaderValue(std::string_view value);

// "name:value\n" for each of `signed_names`, in that order; the values of repeated headers are
// joined with ','. Returns the name of a signed header that is missing through `missing` and an
// InvalidArgument status.
[[nodiscard]] Result<std::string> CanonicalHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::vector<std::string_view>& signed_names, std::string* missing);

// Method, URI, query, headers, signed-header list and payload hash joined by '\n'.
std::string CanonicalRequest(std::string_view method, std::string_view canonical_uri,
                             std::string_view canonical_query, std::string_view canonical_headers,
                             std::string_view signed_headers, std::string_view payload_hash);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of the canonical request>".
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The signature over a string to sign of a chunk, in the chunk-signature chain.
std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope,
                              std::string_view previous_signature, std::string_view chunk_sha256);
// The same for the trailer ("AWS4-HMAC-SHA256-TRAILER").
std::string TrailerStringToSign(std::string_view amz_date, std::string_view scope,
                                std::string_view previous_signature,
                                std::string_view trailer_sha256);

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace granary::s3::internal

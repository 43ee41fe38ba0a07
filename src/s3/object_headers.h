// Object headers in and out: what a PUT stores (Content-Type, x-amz-meta-*, the standard
// headers, Content-MD5, conditions) and what a GET or HEAD returns (ETag, Last-Modified, ...,
// with the response-* query overrides).
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "granary/object_api.h"
#include "s3/request.h"
#include "s3/response.h"

namespace granary::s3 {

// Content-Type, x-amz-meta-* (MetadataTooLarge over kMaxUserMetadataBytes), Content-Encoding
// (without "aws-chunked"), Content-Disposition, Content-Language, Cache-Control, Expires,
// Content-MD5 (InvalidDigest when it is not base64 of 16 bytes) and If-Match / If-None-Match.
// expected_size is left for the caller.
[[nodiscard]] Result<PutOptions> PutOptionsFromHeaders(const Request& request);

// If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since with `prefix` before each
// name ("" or "x-amz-copy-source-"). Unparseable dates are ignored, as S3 does.
Conditions ConditionsFromHeaders(const Request& request, std::string_view prefix);

// InvalidDigest unless `value` is base64 of exactly 16 bytes.
[[nodiscard]] Status CheckContentMd5(std::string_view value);

// "\"<etag>\"".
std::string QuotedEtag(std::string_view etag);

// ETag, Last-Modified, Content-Type, x-amz-meta-*, stored standard headers, Accept-Ranges, and
// the response-* overrides of a GET (response-content-type, -content-language, -expires,
// -cache-control, -content-disposition, -content-encoding).
void AddObjectHeaders(const ObjectInfo& info, const Request& request, Response* response);

}  // namespace granary::s3

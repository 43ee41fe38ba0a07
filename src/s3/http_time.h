// Timestamps as S3 writes them: ISO 8601 in XML documents, RFC 1123 in HTTP headers.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace granary::s3 {

// "2009-10-12T17:50:30.000Z" (milliseconds, UTC).
std::string FormatIso8601(int64_t unix_ns);

// "Mon, 12 Oct 2009 17:50:30 GMT".
std::string FormatRfc1123(int64_t unix_ns);

// Parses an HTTP date (RFC 1123, RFC 850 or asctime, as RFC 9110 requires of recipients) into
// ns since the Unix epoch. kInvalidArgument when it is none of them.
[[nodiscard]] Result<int64_t> ParseHttpDate(std::string_view text);

}  // namespace granary::s3

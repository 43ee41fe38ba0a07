// The Range header of a GET, as S3 reads it.
// Thread-safety: pure function.
#pragma once

#include <string_view>

#include "granary/object_api.h"

namespace granary::s3 {

// Reads "bytes=a-b", "bytes=a-" or "bytes=-n" into `options` (offset/length/suffix_length).
// Returns false, leaving `options` untouched, when the header asks for the whole object: absent,
// not a byte range, syntactically invalid, or several ranges (S3 answers those with the whole
// object). "bytes=-0" is kInvalidRange, as S3 answers it. Whether the range fits the object is
// the store's to say (kInvalidRange).
[[nodiscard]] Result<bool> ParseRange(std::string_view header, GetOptions* options);

}  // namespace granary::s3

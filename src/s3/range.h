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

// Resolves the range of `options` against an object of `size` bytes as ObjectApi::Open does
// (for a HEAD, which the store answers without a range): the first byte and the byte count.
// kInvalidRange when the range starts at or past the end of a non-empty object.
[[nodiscard]] Status ResolveRange(const GetOptions& options, uint64_t size, uint64_t* offset,
                                  uint64_t* length);

}  // namespace granary::s3

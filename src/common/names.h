// The rules for bucket names and object keys, checked once for every door (S3, native, FUSE).
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace granary {

// S3's rules: 3-63 characters of lowercase letters, digits, dots and hyphens; starts and ends
// with a letter or digit; no two adjacent dots; not an IPv4 address; not "xn--"/"sthree-" prefixed
// nor "-s3alias"/"--ol-s3" suffixed. InvalidArgument saying which rule was broken.
Status ValidateBucketName(std::string_view name);

// 1-1024 bytes of valid UTF-8 without NUL or other control characters below 0x20 except tab,
// and with no "." or ".." path segment (a key is also a path: "a/../b" would escape its
// directory in the POSIX mount). InvalidArgument saying which rule was broken.
Status ValidateObjectKey(std::string_view key);

// A bucket's replica count (BucketOptions::replicas): 0 (the cluster's default) or 1 to
// kMaxReplicas. InvalidArgument otherwise.
Status ValidateBucketReplicas(int64_t replicas);

}  // namespace granary

// Conversions between the namespace's records (proto/meta.proto) and ObjectApi's types, ETags,
// and the evaluation of request conditions. Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto.h"
#include "granary/object_api.h"
#include "proto/meta.pb.h"

namespace granary::meta {

// "<hex md5>" or "<hex md5>-<parts>".
std::string EtagOf(std::string_view md5, uint32_t parts);
ObjectInfo InfoOf(std::string_view bucket, std::string_view key, const proto::ObjectRecord& r);

// The runs of an object's data, as a vector (for spans).
inline std::vector<proto::DataRun> RunsOf(const proto::ObjectRecord& r) {
  return {r.runs().begin(), r.runs().end()};
}

// The number of blobs of a run.
uint64_t ChunkCount(const proto::DataRun& run);

// Conditions of a read (GET, HEAD, copy source): kPreconditionFailed or kNotModified.
Status CheckReadConditions(const ObjectInfo& info, const Conditions& c);
// Conditions of a write against the current object (`current` null when absent).
Status CheckWriteConditions(const ObjectInfo* current, const Conditions& c);

// Checks a Content-MD5 header value (base64 of 16 bytes) against a digest: kInvalidArgument if
// it is not base64 of 16 bytes ("InvalidDigest: ..."), kBadDigest if it differs.
Status CheckContentMd5(std::string_view content_md5_base64, std::string_view md5);

}  // namespace granary::meta

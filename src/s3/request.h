// A request as the S3 handlers see it: method, addressing resolved into bucket and key (path
// style or virtual-host style), query parameters and headers decoded.
//
// Thread-safety: Request is a value; the functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace granary::s3 {

struct Request {
  std::string method;      // "GET", upper case as received
  std::string target;      // raw request target, still percent-encoded
  std::string path;        // the raw path part of target (before '?')
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string bucket;      // empty for service-level requests (ListBuckets)
  std::string key;         // decoded; empty for bucket-level requests
  std::string request_id;
  std::string access_key;  // who signed it
  uint64_t content_length = 0;  // 0 when absent
  bool has_content_length = false;
  bool chunked_transfer = false;  // Transfer-Encoding: chunked

  // The first header named `name` (lower case), or null.
  const std::string* Header(std::string_view name) const;
  std::string_view HeaderOr(std::string_view name, std::string_view fallback = {}) const;
  bool HasQuery(std::string_view name) const;
  const std::string* Query(std::string_view name) const;
  std::string_view QueryOr(std::string_view name, std::string_view fallback = {}) const;
  // "/bucket/key" for error documents.
  std::string Resource() const;
};

// Decodes %XX escapes. `plus_is_space` for query components (form encoding, as S3 reads them).
// kInvalidArgument on a malformed escape.
[[nodiscard]] Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);
[[nodiscard]] Status PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// Splits `target` into path and decoded query parameters, and resolves bucket and key from the
// Host header and path: Host "<bucket>.<domain>[:port]" for a domain in `domains` is
// virtual-host style (the whole path is the key); otherwise the first path segment is the
// bucket. Fills path, query, bucket and key of `request`. kInvalidArgument on malformed input.
[[nodiscard]] Status ResolveTarget(std::string_view host, const std::vector<std::string>& domains,
                                   Request* request);

}  // namespace granary::s3

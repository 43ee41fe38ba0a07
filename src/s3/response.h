// A response as the S3 handlers build it, before the connection writes it.
// Thread-safety: a value, owned by one request at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "granary/object_api.h"
#include "s3/request.h"

namespace granary::s3 {

struct Response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  // The whole body; or, when `reader` is set, the first bytes of it (the rest is read from
  // `reader` and streamed).
  std::string body;
  std::unique_ptr<ObjectReader> reader;
  // With `reader`: the body's total length (body.size() plus what the reader still returns).
  uint64_t content_length = 0;
  // HEAD: Content-Length is `content_length` but no body is sent.
  bool omit_body = false;

  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// 200 with an XML document.
Response XmlResponse(std::string xml);

// The S3 error document for `status` (x-amz-request-id is added by the connection for every
// response). kNotModified becomes a bare 304.
Response ErrorResponse(const Status& status, const Request& request);

}  // namespace granary::s3

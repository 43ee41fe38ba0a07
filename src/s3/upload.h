// The streaming uploads: PutObject and UploadPart. The connection feeds the raw body to an
// Upload piece by piece as it arrives; the Upload decodes it (aws-chunked), verifies it
// (x-amz-content-sha256, x-amz-checksum-*, Content-MD5 at Commit) and appends it to an
// ObjectWriter. Nothing is committed unless every byte arrived and every check passed; an Upload
// destroyed before Finish() abandons the write.
//
// Every call blocks on ObjectApi: run it on a worker thread. One Upload belongs to one request;
// its calls come one after another (possibly from different threads), never at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "granary/object_api.h"
#include "s3/auth.h"
#include "s3/body.h"
#include "s3/request.h"
#include "s3/response.h"
#include "s3/router.h"

namespace granary::s3 {

class Upload {
 public:
  // Checks the request (key, sizes, metadata, Content-MD5, part number) and opens the writer.
  // REQUIRES: op is kPutObject or kUploadPart.
  [[nodiscard]] static Result<std::unique_ptr<Upload>> Begin(Op op, const Request& request,
                                                             const AuthContext& auth,
                                                             ObjectApi& api);

  // The next bytes of the raw body, as received.
  [[nodiscard]] Status Feed(std::string_view raw);

  // After the whole raw body: verifies it and commits. The response carries the ETag.
  [[nodiscard]] Result<Response> Finish();

 private:
  Upload() = default;

  Op op_ = Op::kPutObject;
  std::unique_ptr<BodyDecoder> decoder_;
  std::unique_ptr<ObjectWriter> writer_;
  uint64_t declared_size_ = UINT64_MAX;  // payload bytes announced, when known
  uint64_t max_size_ = kMaxSinglePutBytes;
};

}  // namespace granary::s3

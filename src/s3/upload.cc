// Streaming uploads (upload.h).
#include "s3/upload.h"

#include <charconv>

#include "common/names.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/object_headers.h"

namespace granary::s3 {
namespace {

Status TooLarge(uint64_t size, uint64_t max) {
  return S3Status(Code::kInvalidArgument, "EntityTooLarge",
                  "Your proposed upload of " + std::to_string(size) +
                      " bytes exceeds the maximum allowed size of " + std::to_string(max) +
                      " bytes; use a multipart upload");
}

}  // namespace

Result<std::unique_ptr<Upload>> Upload::Begin(Op op, const Request& request,
                                              const AuthContext& auth, ObjectApi& api) {
  std::unique_ptr<Upload> up(new Upload());
  up->op_ = op;
  RETURN_IF_ERROR(ValidateObjectKey(request.key));
  if (!request.has_content_length && !request.chunked_transfer) {
    return S3Status(Code::kInvalidArgument, "MissingContentLength",
                    "You must provide the Content-Length HTTP header.");
  }
  if (IsStreaming(auth.payload_mode)) {
    up->declared_size_ = auth.decoded_length;
  } else if (request.has_content_length) {
    up->declared_size_ = request.content_length;
  }
  if (up->declared_size_ != UINT64_MAX && up->declared_size_ > up->max_size_) {
    return TooLarge(up->declared_size_, up->max_size_);
  }
  ASSIGN_OR_RETURN(up->decoder_, BodyDecoder::Make(request, auth));
  if (op == Op::kUploadPart) {
    ASSIGN_OR_RETURN(int part_number, PartNumberOf(request));
    std::string md5;
    if (const std::string* h = request.Header("content-md5")) {
      RETURN_IF_ERROR(CheckContentMd5(*h));
      md5 = *h;
    }
    ASSIGN_OR_RETURN(up->writer_, api.UploadPart(request.bucket, request.key,
                                                 request.QueryOr("uploadId"), part_number,
                                                 std::move(md5), up->declared_size_));
  } else {
    ASSIGN_OR_RETURN(PutOptions options, PutOptionsFromHeaders(request));
    options.expected_size = up->declared_size_;
    ASSIGN_OR_RETURN(up->writer_, api.BeginPut(request.bucket, request.key, std::move(options)));
  }
  return up;
}

Status Upload::Feed(std::string_view raw) {
  std::string_view payload;
  RETURN_IF_ERROR(decoder_->Feed(raw, &payload));
  if (decoder_->payload_bytes() > max_size_) return TooLarge(decoder_->payload_bytes(), max_size_);
  if (payload.empty()) return Status::OK();
  return writer_->Append(payload);
}

Result<Response> Upload::Finish() {
  RETURN_IF_ERROR(decoder_->Finish());
  if (declared_size_ != UINT64_MAX && decoder_->payload_bytes() != declared_size_) {
    return S3Status(Code::kInvalidArgument, "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length "
                    "HTTP header: got " + std::to_string(decoder_->payload_bytes()) + " of " +
                        std::to_string(declared_size_));
  }
  ASSIGN_OR_RETURN(ObjectInfo info, writer_->Commit());
  writer_.reset();
  Response resp;
  resp.AddHeader("ETag", QuotedEtag(info.etag));
  const auto& [name, value] = decoder_->checksum();
  if (!name.empty()) resp.AddHeader(name, value);
  return resp;
}

}  // namespace granary::s3

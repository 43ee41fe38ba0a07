// Request body decoding and verification (body.h).
#include "s3/body.h"

#include <isa-l/crc.h>

#include "common/crc32c.h"
#include "s3/errors.h"

namespace granary::s3 {

// An incremental x-amz-checksum-* digest.
class BodyChecksum {
 public:
  BodyChecksum(std::string algorithm, std::string expected)
      : algorithm_(std::move(algorithm)), expected_(std::move(expected)) {
    if (algorithm_ == "sha1") sha1_ = std::make_unique<Sha1>();
    if (algorithm_ == "sha256") sha256_ = std::make_unique<Sha256>();
  }

  void Update(std::string_view data) {
    if (sha1_) {
      sha1_->Update(data);
    } else if (sha256_) {
      sha256_->Update(data);
    } else if (algorithm_ == "crc32") {
      crc_ = crc32_gzip_refl(crc_, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size());
    } else {
      crc_ = crc32c::Extend(crc_, data.data(), data.size());
    }
  }

  Status Finish() {
    std::string actual;
    if (sha1_) {
      actual = sha1_->Base64Digest();
    } else if (sha256_) {
      actual = sha256_->Base64Digest();
    } else {
      char be[4] = {static_cast<char>(crc_ >> 24), static_cast<char>(crc_ >> 16),
                    static_cast<char>(crc_ >> 8), static_cast<char>(crc_)};
      actual = Base64Encode(std::string_view(be, 4));
    }
    if (actual != expected_) {
      return S3Status(Code::kBadDigest, "BadDigest",
                      "The x-amz-checksum-" + algorithm_ +
                          " you specified did not match the calculated checksum " + actual);
    }
    return Status::OK();
  }

 private:
  std::string algorithm_;
  std::string expected_;
  std::unique_ptr<Sha1> sha1_;
  std::unique_ptr<Sha256> sha256_;
  uint32_t crc_ = 0;
};

BodyDecoder::~BodyDecoder() = default;

Result<std::unique_ptr<BodyDecoder>> BodyDecoder::Make(const Request& request,
                                                       const AuthContext& auth) {
  std::unique_ptr<BodyDecoder> d(new BodyDecoder());
  if (IsStreaming(auth.payload_mode)) {
    d->chunks_ = std::make_unique<ChunkDecoder>(auth);
  } else if (auth.payload_mode == PayloadMode::kSha256) {
    d->hasher_ = std::make_unique<PayloadHasher>(auth.payload_sha256);
  }
  static constexpr struct {
    std::string_view algorithm;
    size_t raw_bytes;
  } kAlgorithms[] = {{"crc32", 4}, {"crc32c", 4}, {"sha1", 20}, {"sha256", 32}};
  for (const auto& a : kAlgorithms) {
    std::string name = "x-amz-checksum-" + std::string(a.algorithm);
    const std::string* value = request.Header(name);
    if (value == nullptr) continue;
    Result<std::string> raw = Base64Decode(*value);
    if (!raw.ok() || raw->size() != a.raw_bytes) {
      return S3Status(Code::kInvalidArgument, "InvalidRequest",
                      "Value for " + name + " header is invalid: it must be the base64 " +
                          "encoding of the " + std::to_string(a.raw_bytes) + "-byte checksum");
    }
    d->checksum_ = std::make_unique<BodyChecksum>(std::string(a.algorithm), *value);
    d->checksum_echo_ = {name, *value};
    break;
  }
  return d;
}

Status BodyDecoder::Feed(std::string_view raw, std::string_view* out) {
  if (chunks_) {
    scratch_.clear();
    RETURN_IF_ERROR(chunks_->Feed(raw, &scratch_));
    *out = scratch_;
  } else {
    *out = raw;
  }
  payload_bytes_ += out->size();
  if (hasher_) hasher_->Update(*out);
  if (checksum_) checksum_->Update(*out);
  return Status::OK();
}

Status BodyDecoder::Finish() {
  if (chunks_) {
    RETURN_IF_ERROR(chunks_->Finish());
    for (const auto& [name, value] : chunks_->trailers()) {
      if (name.starts_with("x-amz-checksum-")) checksum_echo_ = {name, value};
    }
  }
  if (hasher_) RETURN_IF_ERROR(hasher_->Finish());
  if (checksum_) RETURN_IF_ERROR(checksum_->Finish());
  return Status::OK();
}

}  // namespace granary::s3

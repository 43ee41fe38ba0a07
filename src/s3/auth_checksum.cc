// x-amz-checksum-* algorithms: CRC32 (ISA-L's zlib-compatible crc32_gzip_refl), CRC32C
// (common/crc32c.h), CRC64/NVME (slicing-by-8 tables below), SHA-1 and SHA-256 (OpenSSL).
#include <isa-l/crc.h>

#include <array>
#include <bit>
#include <cstring>
#include <utility>

#include "common/crc32c.h"
#include "s3/auth.h"

namespace granary::s3 {
namespace {

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

// CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5, initial value and final xor all ones.
using Crc64Tables = std::array<std::array<uint64_t, 256>, 8>;

constexpr Crc64Tables MakeCrc64Tables() {
  constexpr uint64_t kPoly = 0x9A6C9329AC4BC9B5ULL;
  Crc64Tables t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t crc = i;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ ((crc & 1) ? kPoly : 0);
    t[0][i] = crc;
  }
  for (size_t i = 0; i < 256; ++i) {
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr Crc64Tables kCrc64Tables = MakeCrc64Tables();

uint64_t Crc64NvmeExtend(uint64_t reg, const unsigned char* p, size_t n) {
  const auto& t = kCrc64Tables;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
    uint64_t v = reg ^ word;
    reg = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^ t[4][(v >> 24) & 0xff] ^
          t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xff];
  return reg;
}

class Crc32Checksum final : public PayloadChecksum {
 public:
  void Update(std::string_view data) override {
    crc_ = crc32_gzip_refl(crc_, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  std::string Base64() override { return Base64Encode(BigEndian(std::exchange(crc_, 0), 4)); }

 private:
  uint32_t crc_ = 0;
};

class Crc32cChecksum final : public PayloadChecksum {
 public:
  void Update(std::string_view data) override {
    crc_ = crc32c::Extend(crc_, data.data(), data.size());
  }
  std::string Base64() override { return Base64Encode(BigEndian(std::exchange(crc_, 0), 4)); }

 private:
  uint32_t crc_ = 0;
};

class Crc64NvmeChecksum final : public PayloadChecksum {
 public:
  void Update(std::string_view data) override {
    reg_ = Crc64NvmeExtend(reg_, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  std::string Base64() override { return Base64Encode(BigEndian(~std::exchange(reg_, ~0ULL), 8)); }

 private:
  uint64_t reg_ = ~0ULL;
};

template <typename D>
class DigestChecksum final : public PayloadChecksum {
 public:
  void Update(std::string_view data) override { digest_.Update(data); }
  std::string Base64() override { return digest_.Base64Digest(); }

 private:
  D digest_;
};

}  // namespace

Result<std::unique_ptr<PayloadChecksum>> PayloadChecksum::Create(std::string_view algorithm) {
  std::string name(algorithm);
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  std::string_view a = name;
  if (a.starts_with("x-amz-checksum-")) a.remove_prefix(15);
  std::unique_ptr<PayloadChecksum> out;
  if (a == "crc32") out = std::make_unique<Crc32Checksum>();
  if (a == "crc32c") out = std::make_unique<Crc32cChecksum>();
  if (a == "crc64nvme") out = std::make_unique<Crc64NvmeChecksum>();
  if (a == "sha1") out = std::make_unique<DigestChecksum<Sha1>>();
  if (a == "sha256") out = std::make_unique<DigestChecksum<Sha256>>();
  if (out == nullptr) {
    return Status::InvalidArgument("checksum algorithm \"" + std::string(algorithm.substr(0, 64)) +
                                   "\" is not supported: use crc32, crc32c, crc64nvme, sha1 or "
                                   "sha256");
  }
  return out;
}

Result<std::string> ChecksumBase64(std::string_view algorithm, std::string_view data) {
  ASSIGN_OR_RETURN(auto checksum, PayloadChecksum::Create(algorithm));
  checksum->Update(data);
  return checksum->Base64();
}

}  // namespace granary::s3

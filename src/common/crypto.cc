#include "common/crypto.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/logging.h"

namespace granary {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64Alphabet[i])] = int8_t(i);
  return table;
}
constexpr std::array<int8_t, 256> kBase64Table = MakeBase64Table();

// OpenSSL fails these calls only when it cannot allocate or the digest is unavailable in the
// configured providers (e.g. MD5 in a FIPS-only setup): an environment that cannot serve S3.
[[noreturn]] void CryptoFailure(const char* what) {
  GLOG_ERROR("OpenSSL failed in {}: the process cannot compute digests; aborting", what);
  std::abort();
}

// The algorithm fetched from the default providers once per process: fetching is the
// expensive part of starting a digest. The fetched objects are immutable and thread-safe.
const EVP_MD* FetchDigest(std::string_view algorithm) {
  static const EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* const kSha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  static const EVP_MD* const kMd5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  if (algorithm == "SHA256") return kSha256;
  if (algorithm == "SHA1") return kSha1;
  if (algorithm == "MD5") return kMd5;
  return nullptr;
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHexDigits[b >> 4];
    out[2 * i + 1] = kHexDigits[b & 0xf];
  }
  return out;
}

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument("hex string has an odd length " + std::to_string(hex.size()));
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("hex string has a non-hex character at offset " +
                                     std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = at(i) << 16;
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64 text length " + std::to_string(text.size()) +
                                   " is not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      if (k >= 4 - pad) {
        v <<= 6;
        continue;
      }
      int8_t d = kBase64Table[static_cast<unsigned char>(text[i + k])];
      if (d < 0) {
        return Status::InvalidArgument("base64 text has an invalid character at offset " +
                                       std::to_string(i + k));
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    // The bits below the last whole byte must be zero (canonical encoding).
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) {
      return Status::InvalidArgument("base64 text is not canonical: non-zero padding bits");
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

// RFC 2104 over a digest fetched once: OpenSSL 3's one-shot HMAC() fetches its algorithm on
// every call, which costs more than the hashing for the short strings SigV4 signs.
std::string HmacSha256(std::string_view key, std::string_view data) {
  constexpr size_t kBlock = 64;
  unsigned char block[kBlock] = {};
  std::string hashed_key;
  if (key.size() > kBlock) {
    Sha256 digest;
    digest.Update(key);
    hashed_key = digest.Finish();
    key = hashed_key;
  }
  std::memcpy(block, key.data(), key.size());
  unsigned char pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x36;
  Sha256 inner;
  inner.Update(std::string_view(reinterpret_cast<const char*>(pad), kBlock));
  inner.Update(data);
  std::string inner_digest = inner.Finish();
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x5c;
  Sha256 outer;
  outer.Update(std::string_view(reinterpret_cast<const char*>(pad), kBlock));
  outer.Update(inner_digest);
  return outer.Finish();
}

std::string Sha256Hex(std::string_view data) {
  Sha256 digest;
  digest.Update(data);
  return digest.HexDigest();
}

Digest::Digest(const char* algorithm) : md_(FetchDigest(algorithm)), ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) throw std::bad_alloc();
  if (md_ == nullptr) CryptoFailure(algorithm);
  Reset();
}

Digest::~Digest() { EVP_MD_CTX_free(ctx_); }

void Digest::Reset() {
  if (EVP_DigestInit_ex(ctx_, static_cast<const EVP_MD*>(md_), nullptr) != 1) {
    CryptoFailure("EVP_DigestInit_ex");
  }
}

void Digest::Update(std::string_view data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) CryptoFailure("EVP_DigestUpdate");
}

std::string Digest::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &len) != 1) CryptoFailure("EVP_DigestFinal_ex");
  Reset();
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace granary

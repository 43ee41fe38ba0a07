// Encodings and digests every part uses: hex, base64, HMAC-SHA256 and SHA-256/SHA-1/MD5 over
// OpenSSL's EVP interface.
//
// Thread-safety: the free functions are thread-safe; a Digest object belongs to one thread at a
// time.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

// OpenSSL's digest context, kept opaque so that this header does not pull in OpenSSL.
struct evp_md_ctx_st;

namespace granary {

// Lower-case hex of `bytes`.
std::string HexEncode(std::string_view bytes);
// Decodes hex (either case); InvalidArgument on an odd length or a non-hex character.
[[nodiscard]] Result<std::string> HexDecode(std::string_view hex);

// Standard base64 (RFC 4648, '+' '/', '=' padding).
std::string Base64Encode(std::string_view bytes);
// Decodes padded standard base64; InvalidArgument on anything else (bad length, characters,
// padding, or non-zero bits after the last byte).
[[nodiscard]] Result<std::string> Base64Decode(std::string_view text);

// Raw 32-byte HMAC-SHA256 of `data` with `key`.
std::string HmacSha256(std::string_view key, std::string_view data);
// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Incremental digests over OpenSSL's EVP interface. Finish() ends the computation and returns
// the raw digest; afterwards the object starts over as if new. OpenSSL failing to provide the
// algorithm (MD5 in a FIPS-only configuration) aborts the process: it cannot serve S3.
class Digest {
 public:
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void Update(std::string_view data);
  std::string Finish();
  std::string HexDigest() { return HexEncode(Finish()); }
  std::string Base64Digest() { return Base64Encode(Finish()); }

 protected:
  explicit Digest(const char* algorithm);  // "SHA256", "MD5", "SHA1"

 private:
  void Reset();
  const void* md_;  // const EVP_MD*
  evp_md_ctx_st* ctx_;
};

class Sha256 : public Digest {
 public:
  Sha256() : Digest("SHA256") {}
};

class Sha1 : public Digest {
 public:
  Sha1() : Digest("SHA1") {}
};

// MD5, for ETags and Content-MD5.
class Md5 : public Digest {
 public:
  Md5() : Digest("MD5") {}
};

}  // namespace granary

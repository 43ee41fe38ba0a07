#include "rpc/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/crypto.h"

namespace granary::rpc {
namespace {

constexpr size_t kMinNonceChars = 16;
constexpr size_t kMaxNonceChars = 128;
// Bounds the cache (about 15 MiB); past it the oldest nonces are forgotten first.
constexpr size_t kMaxRecentNonces = 1 << 17;

}  // namespace

std::string HelloStringToSign(int64_t unix_time, std::string_view nonce) {
  std::string s = "GRANARY-RPC-V1\n";
  s += std::to_string(unix_time);
  s += '\n';
  s += nonce;
  return s;
}

std::string SignHello(std::string_view secret, int64_t unix_time, std::string_view nonce) {
  return HexEncode(HmacSha256(secret, HelloStringToSign(unix_time, nonce)));
}

Result<proto::HelloRequest> MakeHello(std::string_view access_key, std::string_view secret,
                                      int64_t unix_time) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return Status::Internal("OpenSSL RAND_bytes failed to make a nonce");
  }
  proto::HelloRequest hello;
  hello.set_access_key(std::string(access_key));
  hello.set_unix_time(unix_time);
  hello.set_nonce(HexEncode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw))));
  hello.set_signature(SignHello(secret, unix_time, hello.nonce()));
  return hello;
}

HelloVerifier::HelloVerifier(SecretLookup secrets, Clock* clock)
    : secrets_(std::move(secrets)), clock_(clock ? clock : SystemClock::Default()) {}

Status HelloVerifier::Verify(const proto::HelloRequest& hello) {
  if (hello.access_key().empty()) return Status(Code::kUnauthenticated, "Hello without access key");
  if (hello.nonce().size() < kMinNonceChars || hello.nonce().size() > kMaxNonceChars) {
    return Status(Code::kUnauthenticated, "Hello nonce must be 16 to 128 characters");
  }
  int64_t now = static_cast<int64_t>(clock_->WallMicros() / 1'000'000);
  int64_t skew = hello.unix_time() - now;
  if (skew > kMaxClockSkewSeconds || skew < -kMaxClockSkewSeconds) {
    return Status(Code::kUnauthenticated,
                  "Hello time " + std::to_string(hello.unix_time()) + " is " +
                      std::to_string(skew) + " s from the server's clock (" + std::to_string(now) +
                      "); the limit is 15 minutes: synchronize the client's clock");
  }
  std::optional<std::string> secret = secrets_ ? secrets_(hello.access_key()) : std::nullopt;
  if (!secret) {
    return Status(Code::kUnauthenticated,
                  "access key \"" + hello.access_key() + "\" is not known to this server");
  }
  std::string expected = SignHello(*secret, hello.unix_time(), hello.nonce());
  if (hello.signature().size() != expected.size() ||
      CRYPTO_memcmp(hello.signature().data(), expected.data(), expected.size()) != 0) {
    return Status(Code::kUnauthenticated, "signature does not match for access key \"" +
                                              hello.access_key() + "\": check the secret key");
  }
  MutexLock lock(&mu_);
  while (!recent_.empty() && (recent_.front().first < now - 2 * kMaxClockSkewSeconds ||
                              recent_.size() >= kMaxRecentNonces)) {
    recent_set_.erase(recent_.front().second);
    recent_.pop_front();
  }
  if (!recent_set_.insert(hello.nonce()).second) {
    return Status(Code::kUnauthenticated, "Hello nonce was already used (a replayed Hello)");
  }
  recent_.emplace_back(now, hello.nonce());
  return Status::OK();
}

}  // namespace granary::rpc

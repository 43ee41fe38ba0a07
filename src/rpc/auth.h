// The native protocol's handshake: a Hello signed with HMAC-SHA256 of the secret key, checked by
// the server against its SecretLookup, a clock-skew window and a cache of recent nonces.
//
//   signature = lower-case hex HMAC-SHA256(secret, "GRANARY-RPC-V1\n" + unix_time + "\n" + nonce)
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/clock.h"
#include "common/credentials.h"
#include "common/mutex.h"
#include "common/status.h"
#include "proto/rpc.pb.h"

namespace granary::rpc {

inline constexpr int64_t kMaxClockSkewSeconds = 15 * 60;

// The string the signature covers. Thread-safe.
std::string HelloStringToSign(int64_t unix_time, std::string_view nonce);
// Lower-case hex HMAC-SHA256(secret, HelloStringToSign(...)). Thread-safe.
std::string SignHello(std::string_view secret, int64_t unix_time, std::string_view nonce);
// A Hello for `access_key` at `unix_time` with a fresh random nonce. Thread-safe.
Result<proto::HelloRequest> MakeHello(std::string_view access_key, std::string_view secret,
                                      int64_t unix_time);

// Checks Hellos. Thread-safe.
class HelloVerifier {
 public:
  // `clock` (wall time) may be null for the system clock; it must outlive the verifier.
  HelloVerifier(SecretLookup secrets, Clock* clock);

  // OK if the access key exists, the signature matches, the time is within
  // kMaxClockSkewSeconds of the clock and the nonce was not used within the window.
  // kUnauthenticated otherwise, with a message that names the reason but never the secret.
  Status Verify(const proto::HelloRequest& hello);

 private:
  SecretLookup secrets_;
  Clock* clock_;
  Mutex mu_;
  // Nonces of accepted Hellos, oldest first, forgotten once outside the window.
  std::deque<std::pair<int64_t, std::string>> recent_ GUARDED_BY(mu_);
  std::unordered_set<std::string> recent_set_ GUARDED_BY(mu_);
};

}  // namespace granary::rpc

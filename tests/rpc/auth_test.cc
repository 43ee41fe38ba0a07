// The Hello's signature and its checks: known answer, wrong secret, unknown key, clock skew,
// replay.
#include "rpc/auth.h"

#include <gtest/gtest.h>

namespace granary::rpc {
namespace {

SecretLookup OneKey() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == "AK") return std::string("secret");
    return std::nullopt;
  };
}

constexpr int64_t kNow = 1'700'000'000;

proto::HelloRequest Hello(std::string_view key, std::string_view secret, int64_t time,
                          std::string nonce = "0123456789abcdef0123456789abcdef") {
  proto::HelloRequest h;
  h.set_access_key(std::string(key));
  h.set_unix_time(time);
  h.set_nonce(nonce);
  h.set_signature(SignHello(secret, time, nonce));
  return h;
}

TEST(AuthTest, KnownSignature) {
  EXPECT_EQ(HelloStringToSign(1700000000, "n0nce"), "GRANARY-RPC-V1\n1700000000\nn0nce");
  // python3 -c 'import hmac,hashlib;print(hmac.new(b"secret",
  //   b"GRANARY-RPC-V1\n1700000000\nn0nce",hashlib.sha256).hexdigest())'
  EXPECT_EQ(SignHello("secret", 1700000000, "n0nce"),
            "52d602f22a7d1e246329c237f542ab6ff8a07a793f75c91ea55c5b442a54c165");
}

TEST(AuthTest, AcceptsAValidHelloOnce) {
  ManualClock clock(static_cast<uint64_t>(kNow) * 1'000'000'000);
  HelloVerifier verifier(OneKey(), &clock);
  proto::HelloRequest h = Hello("AK", "secret", kNow);
  EXPECT_TRUE(verifier.Verify(h).ok());
  Status replay = verifier.Verify(h);
  EXPECT_EQ(replay.code(), Code::kUnauthenticated);
  EXPECT_NE(replay.message().find("already used"), std::string::npos);
  EXPECT_TRUE(verifier.Verify(Hello("AK", "secret", kNow, "another-nonce-0123456789")).ok());
}

TEST(AuthTest, MakeHelloIsAccepted) {
  ManualClock clock(static_cast<uint64_t>(kNow) * 1'000'000'000);
  HelloVerifier verifier(OneKey(), &clock);
  Result<proto::HelloRequest> a = MakeHello("AK", "secret", kNow);
  Result<proto::HelloRequest> b = MakeHello("AK", "secret", kNow);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->nonce(), b->nonce());
  EXPECT_TRUE(verifier.Verify(*a).ok());
  EXPECT_TRUE(verifier.Verify(*b).ok());
}

TEST(AuthTest, RefusesWrongSecretUnknownKeyAndBadNonce) {
  ManualClock clock(static_cast<uint64_t>(kNow) * 1'000'000'000);
  HelloVerifier verifier(OneKey(), &clock);
  Status st = verifier.Verify(Hello("AK", "wrong", kNow));
  EXPECT_EQ(st.code(), Code::kUnauthenticated);
  EXPECT_EQ(st.message().find("secret\""), std::string::npos);  // never echoes secrets
  EXPECT_EQ(verifier.Verify(Hello("BK", "secret", kNow)).code(), Code::kUnauthenticated);
  EXPECT_EQ(verifier.Verify(Hello("", "secret", kNow)).code(), Code::kUnauthenticated);
  EXPECT_EQ(verifier.Verify(Hello("AK", "secret", kNow, "short")).code(), Code::kUnauthenticated);
  proto::HelloRequest tampered = Hello("AK", "secret", kNow);
  tampered.set_unix_time(kNow + 1);  // the signature covers the time
  EXPECT_EQ(verifier.Verify(tampered).code(), Code::kUnauthenticated);
}

TEST(AuthTest, ClockSkewWindow) {
  ManualClock clock(static_cast<uint64_t>(kNow) * 1'000'000'000);
  HelloVerifier verifier(OneKey(), &clock);
  int n = 0;
  auto at = [&](int64_t t) {
    return verifier.Verify(Hello("AK", "secret", t, "nonce-for-skew-test-" + std::to_string(n++)));
  };
  EXPECT_TRUE(at(kNow - 15 * 60).ok());
  EXPECT_TRUE(at(kNow + 15 * 60).ok());
  Status late = at(kNow - 15 * 60 - 1);
  EXPECT_EQ(late.code(), Code::kUnauthenticated);
  EXPECT_NE(late.message().find("synchronize"), std::string::npos);
  EXPECT_EQ(at(kNow + 15 * 60 + 1).code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace granary::rpc

// A Client connected to an RpcService that serves a MemoryObjectApi on a free port of 127.0.0.1.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "support/memory_object_api.h"
#include "granary/client.h"
#include "node/rpc_service.h"

namespace granary::testing {

inline const Credentials kTestCredentials{"GRANARYTESTKEY", "test-secret-0123456789"};

inline SecretLookup TestSecrets() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == kTestCredentials.access_key) return kTestCredentials.secret_key;
    return std::nullopt;
  };
}

// `n` bytes that differ at every position (so misplaced chunks are caught).
inline std::string Pattern(size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    for (size_t j = 0; j < 4 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

inline ::testing::AssertionResult IsOk(const char* expr, const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " failed: " << s.ToString();
}
inline ::testing::AssertionResult HasCode(const char* expr, const char*, const Status& s,
                                          Code code) {
  if (s.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << expr << " is \"" << s.ToString() << "\", expected " << CodeName(code);
}
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::granary::testing::IsOk, expr)
#define EXPECT_CODE(expr, code) EXPECT_PRED_FORMAT2(::granary::testing::HasCode, expr, code)

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartService(0);
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  void StartService(uint16_t port, bool shared_buffers = true) {
    node::RpcServiceOptions options;
    options.listen = "127.0.0.1:" + std::to_string(port);
    options.max_connections = 256;
    options.shared_buffers = shared_buffers;
    auto service = node::RpcService::Start(*api_, TestSecrets(), options);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
    address_ = "127.0.0.1:" + std::to_string(service_->port());
  }

  std::unique_ptr<Client> Connect(ClientOptions options = SmallChunks(),
                                  const Credentials& credentials = kTestCredentials) {
    auto client = Client::Connect(address_, credentials, options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Chunks of 1 MiB, so that a few MiB already take the parallel path.
  static ClientOptions SmallChunks() {
    ClientOptions o;
    o.chunk_bytes = 1 << 20;
    o.parallel_chunks = 4;
    o.max_connections = 8;
    o.timeout_ms = 30'000;
    return o;
  }

  std::shared_ptr<MemoryObjectApi> api_ = std::make_shared<MemoryObjectApi>();
  std::unique_ptr<node::RpcService> service_;
  std::string address_;
  std::unique_ptr<Client> client_;
};

}  // namespace granary::testing

// A gateway over a MemoryObjectApi on 127.0.0.1, port 0, for the end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "s3/gateway.h"
#include "s3/s3_client.h"
#include "support/memory_object_api.h"

namespace granary::s3::testing {

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { StartGateway({}); }
  void TearDown() override {
    if (gateway_) gateway_->Stop();
  }

  void StartGateway(GatewayOptions options) {
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.worker_threads = 4;
    SecretLookup secrets = [](std::string_view key) -> std::optional<std::string> {
      if (key == kAccessKey) return std::string(kSecretKey);
      return std::nullopt;
    };
    auto gw = Gateway::Start(api_, secrets, std::move(options));
    ASSERT_TRUE(gw.ok()) << gw.status().ToString();
    gateway_ = std::move(gw).value();
    client_ = std::make_unique<S3Client>(gateway_->port());
  }

  void MakeBucket(const std::string& name) {
    HttpResult r = client_->Send("PUT", "/" + name);
    ASSERT_EQ(r.status, 200u) << r.body;
  }

  granary::testing::MemoryObjectApi api_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<S3Client> client_;
};

}  // namespace granary::s3::testing

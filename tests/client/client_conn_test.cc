// The client's connections: credentials, an unreachable or restarted server, deadlines, and many
// threads sharing one client.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "client/client_fixture.h"

namespace granary::testing {
namespace {

TEST_F(ClientTest, WrongCredentialsAreUnauthenticated) {
  auto wrong_secret = Client::Connect(address_, {kTestCredentials.access_key, "wrong"}, {});
  EXPECT_EQ(wrong_secret.status().code(), Code::kUnauthenticated);
  EXPECT_NE(wrong_secret.status().message().find("signature"), std::string::npos)
      << wrong_secret.status().ToString();
  auto unknown = Client::Connect(address_, {"NOSUCHKEY", "x"}, {});
  EXPECT_EQ(unknown.status().code(), Code::kUnauthenticated);
  EXPECT_NE(unknown.status().message().find("NOSUCHKEY"), std::string::npos);
}

TEST_F(ClientTest, BadOptionsAndAddresses) {
  ClientOptions bad;
  bad.max_connections = 0;
  EXPECT_EQ(Client::Connect(address_, kTestCredentials, bad).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Client::Connect("no-port", kTestCredentials, {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Client::Connect("127.0.0.1:99999", kTestCredentials, {}).status().code(),
            Code::kInvalidArgument);
}

TEST_F(ClientTest, StoppedServerIsUnavailable) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  ASSERT_TRUE(client_->Put("bkt", "k", "v").ok());
  service_->Stop();
  EXPECT_CODE(client_->Get("bkt", "k").status(), Code::kUnavailable);
  EXPECT_CODE(client_->Put("bkt", "k", "v2").status(), Code::kUnavailable);
  EXPECT_CODE(client_->CreateBucket("ccc"), Code::kUnavailable);
  std::vector<std::string> keys = {"k"};
  EXPECT_EQ(client_->GetMany("bkt", keys)[0].status().code(), Code::kUnavailable);
  EXPECT_EQ(Client::Connect(address_, kTestCredentials, {}).status().code(), Code::kUnavailable);
}

TEST_F(ClientTest, ReconnectsAfterServerRestart) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  ASSERT_TRUE(client_->Put("bkt", "k", "v").ok());
  uint16_t port = service_->port();
  service_.reset();
  StartService(port);  // same store, same port
  Result<std::string> got = client_->Get("bkt", "k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "v");
  EXPECT_TRUE(client_->Put("bkt", "k2", "v2").ok());
}

// An API whose HeadBucket blocks until released, to exercise deadlines.
class BlockingApi : public MemoryObjectApi {
 public:
  Result<BucketInfo> HeadBucket(std::string_view bucket) override {
    if (bucket == "slow") {
      entered.set_value();
      release_future.wait();
    }
    return MemoryObjectApi::HeadBucket(bucket);
  }
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> release_future = release.get_future().share();
};

TEST(ClientDeadlineTest, RequestPastItsDeadlineIsUnavailable) {
  BlockingApi api;
  node::RpcServiceOptions options;
  options.listen = "127.0.0.1:0";
  auto service = node::RpcService::Start(api, TestSecrets(), options);
  ASSERT_TRUE(service.ok());
  ClientOptions co;
  co.timeout_ms = 300;
  co.retries = 0;
  auto client =
      Client::Connect("127.0.0.1:" + std::to_string((*service)->port()), kTestCredentials, co);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Status st = (*client)->HeadBucket("slow").status();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.ToString();
  api.entered.get_future().wait();
  api.release.set_value();
  // The timed-out connection was discarded; the next request uses a fresh one.
  EXPECT_CODE((*client)->HeadBucket("other").status(), Code::kNoSuchBucket);
  (*service)->Stop();
}

TEST_F(ClientTest, ManyThreadsShareOneClient) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  constexpr int kThreads = 12;
  constexpr int kOps = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        // Mostly small objects, now and then one that takes the parallel path.
        size_t size = (i % 10 == 0) ? (3 << 20) + i : 100 + i * 13;
        std::string data = Pattern(size, t * 1000 + i);
        if (!client_->Put("bkt", key, data).ok()) ++failures;
        Result<std::string> got = client_->Get("bkt", key);
        if (!got.ok() || *got != data) ++failures;
        if (i % 7 == 0 && !client_->Delete("bkt", key).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ListOptions lo;
  lo.prefix = "t0/";
  EXPECT_EQ(client_->List("bkt", lo)->objects.size(), static_cast<size_t>(kOps - (kOps + 6) / 7));
}

}  // namespace
}  // namespace granary::testing

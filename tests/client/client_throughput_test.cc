// Throughput of the native protocol alone: the client against an RpcService whose ObjectApi
// stores nothing and serves reads from one shared buffer, so the figures are the protocol's and
// the network stack's, not a store's. Disabled by default (timing, not correctness); run with
//   client_tests --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "client/client_fixture.h"

namespace granary::testing {
namespace {

class NullApi : public MemoryObjectApi {
 public:
  explicit NullApi(size_t size) : data_(Pattern(size)) {}
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view, std::string_view,
                                                 PutOptions) override {
    class W : public ObjectWriter {
     public:
      Status Append(std::string_view d) override {
        n_ += d.size();
        return Status::OK();
      }
      Result<ObjectInfo> Commit() override {
        ObjectInfo i;
        i.size = n_;
        return i;
      }
      uint64_t n_ = 0;
    };
    return std::unique_ptr<ObjectWriter>(new W);
  }
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view, std::string_view,
                                             const GetOptions& o) override {
    class R : public ObjectReader {
     public:
      R(const std::string& d, uint64_t off, uint64_t len) : d_(d), off_(off), len_(len) {}
      const ObjectInfo& info() const override { return info_; }
      uint64_t offset() const override { return off_; }
      uint64_t length() const override { return len_; }
      Result<size_t> Read(std::span<char> buf) override {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), len_ - pos_));
        std::memcpy(buf.data(), d_.data() + off_ + pos_, n);
        pos_ += n;
        return n;
      }
      ObjectInfo info_;
      const std::string& d_;
      uint64_t off_, len_, pos_ = 0;
    };
    uint64_t off = std::min<uint64_t>(o.offset, data_.size());
    uint64_t len = std::min<uint64_t>(o.length, data_.size() - off);
    auto r = std::make_unique<R>(data_, off, len);
    r->info_.size = data_.size();
    r->info_.version = 1;
    return std::unique_ptr<ObjectReader>(std::move(r));
  }

 private:
  std::string data_;
};

TEST(ClientThroughputTest, DISABLED_Throughput) {
  int threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency() / 2));
  for (size_t size : {size_t{64} << 10, size_t{1} << 20, size_t{64} << 20}) {
    NullApi api(size);
    node::RpcServiceOptions so;
    so.listen = "127.0.0.1:0";
    auto service = node::RpcService::Start(api, TestSecrets(), so);
    ASSERT_TRUE(service.ok());
    ClientOptions co;
    co.max_connections = 64;
    auto client =
        Client::Connect("127.0.0.1:" + std::to_string((*service)->port()), kTestCredentials, co);
    ASSERT_TRUE(client.ok());
    std::string data = Pattern(size);
    uint64_t total = std::max<uint64_t>(size * threads * 4, 2ull << 30);
    int per_thread = static_cast<int>(total / size / threads);
    for (bool put : {true, false}) {
      auto start = std::chrono::steady_clock::now();
      std::vector<std::thread> ts;
      std::atomic<int> failures{0};
      for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&] {
          std::string buf(size, '\0');
          for (int i = 0; i < per_thread; ++i) {
            bool ok = put ? (*client)->Put("bkt", "k", data).ok()
                          : (*client)->GetInto("bkt", "k", std::span<char>(buf)).ok();
            if (!ok) ++failures;
          }
        });
      }
      for (auto& t : ts) t.join();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double bytes = static_cast<double>(size) * per_thread * threads;
      EXPECT_EQ(failures.load(), 0);
      printf("%-4s %8zu KiB x %d threads: %8.1f MiB/s %9.0f ops/s\n", put ? "PUT" : "GET",
             size >> 10, threads, bytes / secs / (1 << 20), per_thread * threads / secs);
    }
  }
}

}  // namespace
}  // namespace granary::testing

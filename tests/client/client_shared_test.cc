// Client::AllocateShared: Put from and GetInto a shared buffer move the bytes through memory the
// server maps too, whole, ranged and in parallel chunks, and so do batches (PutMany,
// GetManyInto); errors are the socket path's; the
// server drops a buffer when its client destroys it.
#include <chrono>
#include <cstring>
#include <thread>

#include "client/client_fixture.h"

namespace granary::testing {
namespace {

class ClientSharedTest : public ClientTest {
 protected:
  void SetUp() override {
    ClientTest::SetUp();
    ASSERT_OK(client_->CreateBucket("bkt"));
  }
  std::unique_ptr<SharedBuffer> Allocate(uint64_t bytes) {
    auto buffer = client_->AllocateShared(bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status().ToString();
    return buffer.ok() ? std::move(*buffer) : nullptr;
  }
  // Waits for the server to have `n` shared buffers (it notices a closed anchor on its own time).
  bool WaitForServerBuffers(size_t n) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (service_->shared_buffers() != n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
};

TEST_F(ClientSharedTest, PutAndGetThroughSharedMemoryOfEverySize) {
  // 3.5 MiB with 1 MiB chunks: the first chunk with the response, the rest in parallel GETs.
  for (size_t size : {size_t{1}, size_t{100}, size_t{64} << 10, (size_t{7} << 20) / 2}) {
    SCOPED_TRACE(size);
    const std::string data = Pattern(size, static_cast<uint32_t>(size));
    auto out = Allocate(size + 4096);
    auto in = Allocate(size + 4096);
    ASSERT_TRUE(out && in);
    // Not at the buffer's start: ranges are found by address anywhere inside.
    std::memcpy(out->data() + 100, data.data(), size);
    auto put = client_->Put("bkt", "k", std::string_view(out->data() + 100, size));
    ASSERT_OK(put.status());
    EXPECT_EQ(put->size, size);
    // Read back over the socket: the same object.
    auto plain = client_->Get("bkt", "k");
    ASSERT_OK(plain.status());
    EXPECT_TRUE(*plain == data);
    auto got = client_->GetInto("bkt", "k", in->bytes().subspan(7));
    ASSERT_OK(got.status());
    ASSERT_EQ(*got, size);
    EXPECT_EQ(std::memcmp(in->data() + 7, data.data(), size), 0);
  }
}

TEST_F(ClientSharedTest, RangedGetIntoSharedMemory) {
  const std::string data = Pattern(3 << 20, 9);
  ASSERT_OK(client_->Put("bkt", "big", data).status());
  auto in = Allocate(4 << 20);
  ASSERT_NE(in, nullptr);
  GetOptions range;
  range.offset = (1 << 20) - 5;
  range.length = (3 << 19) + 11;
  auto got = client_->GetInto("bkt", "big", in->bytes(), range);
  ASSERT_OK(got.status());
  ASSERT_EQ(*got, range.length);
  EXPECT_EQ(std::string_view(in->data(), *got),
            std::string_view(data).substr(range.offset, range.length));
}

TEST_F(ClientSharedTest, ErrorsAreTheSocketPaths) {
  auto in = Allocate(1 << 20);
  ASSERT_NE(in, nullptr);
  EXPECT_CODE(client_->GetInto("bkt", "missing", in->bytes()).status(), Code::kNotFound);
  EXPECT_CODE(client_->GetInto("nobucket", "k", in->bytes()).status(), Code::kNoSuchBucket);
  ASSERT_OK(client_->Put("bkt", "two", Pattern(2 << 20, 3)).status());
  std::memset(in->data(), 'z', in->size());
  auto small = client_->GetInto("bkt", "two", in->bytes());
  EXPECT_CODE(small.status(), Code::kInvalidArgument);
  EXPECT_EQ(in->data()[0], 'z');  // refused before anything was written, as over the socket
  EXPECT_CODE(client_->Put("nobucket", "k", std::string_view(in->data(), 10)).status(),
              Code::kNoSuchBucket);
  PutOptions only_new;
  only_new.conditions.if_none_match = "*";
  EXPECT_CODE(client_->Put("bkt", "two", std::string_view(in->data(), 10), only_new).status(),
              Code::kPreconditionFailed);
  // Buffers beyond the server's limit are refused with a clear error.
  EXPECT_CODE(client_->AllocateShared(0).status(), Code::kInvalidArgument);
  EXPECT_CODE(client_->AllocateShared(uint64_t{1} << 40).status(), Code::kInvalidArgument);
}

TEST_F(ClientSharedTest, BatchesMoveTheirBytesThroughSharedMemory) {
  // Inline, one-blob and 1 MiB objects, from a shared buffer and (one of them) from plain memory.
  const std::vector<size_t> sizes = {100, size_t{64} << 10, size_t{1} << 20, 3000, 5};
  auto out = Allocate(2 << 20);
  auto in = Allocate(2 << 20);
  ASSERT_TRUE(out && in);
  std::vector<std::string> data;
  std::vector<PutItem> items;
  size_t pos = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    data.push_back(Pattern(sizes[i], static_cast<uint32_t>(i + 40)));
    PutItem item;
    item.key = "batch/" + std::to_string(i);
    if (i == 3) {
      item.data = data[i];
    } else {
      std::memcpy(out->data() + pos, data[i].data(), sizes[i]);
      item.data = std::string_view(out->data() + pos, sizes[i]);
      pos += sizes[i];
    }
    items.push_back(std::move(item));
  }
  auto put = client_->PutMany("bkt", items);
  ASSERT_EQ(put.size(), items.size());
  for (size_t i = 0; i < put.size(); ++i) {
    ASSERT_OK(put[i].status());
    EXPECT_EQ(put[i]->size, sizes[i]);
    auto plain = client_->Get("bkt", items[i].key);
    ASSERT_OK(plain.status());
    EXPECT_TRUE(*plain == data[i]) << i;
  }
  // Read back into slices of a shared buffer; a missing key and a slice too small are items'
  // errors, and nothing is written into the small slice.
  std::memset(in->data(), 'z', in->size());
  std::vector<std::string> keys;
  std::vector<std::span<char>> slices;
  pos = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    keys.push_back(items[i].key);
    slices.push_back(in->bytes().subspan(pos, sizes[i]));
    pos += sizes[i];
  }
  keys.push_back("batch/missing");
  slices.push_back(in->bytes().subspan(pos, 10));
  keys.push_back(items[1].key);
  slices.push_back(in->bytes().subspan(pos + 10, 1000));
  auto got = client_->GetManyInto("bkt", keys, slices);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_OK(got[i].status());
    EXPECT_EQ(*got[i], sizes[i]);
    EXPECT_TRUE(std::string_view(slices[i].data(), sizes[i]) == data[i]) << i;
  }
  EXPECT_CODE(got[sizes.size()].status(), Code::kNotFound);
  EXPECT_CODE(got[sizes.size() + 1].status(), Code::kInvalidArgument);
  EXPECT_EQ(std::string_view(slices.back().data(), 1000), std::string(1000, 'z'));
  // A bucket that does not exist fails every item.
  auto none = client_->GetManyInto("nobucket", std::span(keys).first(2),
                                   std::span(slices).first(2));
  for (const auto& r : none) EXPECT_CODE(r.status(), Code::kNoSuchBucket);
}

TEST_F(ClientSharedTest, ServerDropsABufferItsClientDestroys) {
  auto a = Allocate(1 << 20);
  auto b = Allocate(1 << 20);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(service_->shared_buffers(), 2u);
  a.reset();
  EXPECT_TRUE(WaitForServerBuffers(1));
  // The other still works.
  std::memset(b->data(), 'x', 1000);
  ASSERT_OK(client_->Put("bkt", "x", std::string_view(b->data(), 1000)).status());
  auto got = client_->Get("bkt", "x");
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, std::string(1000, 'x'));
  // Another client's buffer goes when it frees it, as when its process dies: its anchor
  // connection closes.
  b.reset();
  auto other = Connect();
  ASSERT_NE(other, nullptr);
  auto c = other->AllocateShared(4096);
  ASSERT_OK(c.status());
  EXPECT_TRUE(WaitForServerBuffers(1));
  c->reset();
  other.reset();
  EXPECT_TRUE(WaitForServerBuffers(0));
}

TEST_F(ClientSharedTest, BuffersOutliveARestartedServerAsPlainMemory) {
  auto buf = Allocate(1 << 20);
  ASSERT_NE(buf, nullptr);
  const std::string data = Pattern(300'000, 5);
  std::memcpy(buf->data(), data.data(), data.size());
  ASSERT_OK(client_->Put("bkt", "before", std::string_view(buf->data(), data.size())).status());
  // The server restarts (same port, same objects): it knows no shared buffer any more, and ids
  // start elsewhere, so the old id names nothing.
  const uint16_t port = service_->port();
  service_.reset();
  StartService(port);
  ASSERT_EQ(service_->shared_buffers(), 0u);
  // The buffer keeps working, its bytes now going over the socket.
  ASSERT_OK(client_->Put("bkt", "after", std::string_view(buf->data(), data.size())).status());
  std::memset(buf->data(), 0, buf->size());
  auto got = client_->GetInto("bkt", "before", buf->bytes());
  ASSERT_OK(got.status());
  EXPECT_EQ(std::string_view(buf->data(), *got), data);
  auto after = client_->Get("bkt", "after");
  ASSERT_OK(after.status());
  EXPECT_TRUE(*after == data);
  // A new buffer is shared again.
  auto fresh = Allocate(4096);
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(service_->shared_buffers(), 1u);
  // Restarted once more, without shared buffers at all (not_supported): the same.
  service_.reset();
  StartService(port, /*shared_buffers=*/false);
  std::memcpy(fresh->data(), "abcd", 4);
  ASSERT_OK(client_->Put("bkt", "plain", std::string_view(fresh->data(), 4)).status());
  std::memset(fresh->data(), 0, 4);
  auto plain = client_->GetInto("bkt", "plain", fresh->bytes());
  ASSERT_OK(plain.status());
  EXPECT_EQ(std::string_view(fresh->data(), *plain), "abcd");
  EXPECT_CODE(client_->AllocateShared(4096).status(), Code::kNotSupported);
}

TEST_F(ClientSharedTest, BatchesOutliveARestartedServer) {
  // Batches through buffers the server lost (it restarted, then offers none) go again over the
  // socket, each item answered as before.
  auto out = Allocate(64 << 10);
  auto in = Allocate(64 << 10);
  ASSERT_TRUE(out && in);
  const uint16_t port = service_->port();
  for (bool shared_buffers : {true, false}) {
    SCOPED_TRACE(shared_buffers);
    service_.reset();
    StartService(port, shared_buffers);
    std::vector<PutItem> items;
    std::vector<std::string> keys;
    std::vector<std::span<char>> slices;
    for (size_t i = 0; i < 4; ++i) {
      const std::string data = Pattern(10'000, static_cast<uint32_t>(i + 60));
      std::memcpy(out->data() + i * 10'000, data.data(), data.size());
      keys.push_back("restart/" + std::to_string(i));
      items.push_back({keys.back(), std::string_view(out->data() + i * 10'000, 10'000), {}});
      slices.push_back(in->bytes().subspan(i * 10'000, 10'000));
    }
    for (const auto& r : client_->PutMany("bkt", items)) ASSERT_OK(r.status());
    std::memset(in->data(), 0, in->size());
    auto got = client_->GetManyInto("bkt", keys, slices);
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_OK(got[i].status());
      EXPECT_EQ(std::string_view(slices[i].data(), *got[i]), items[i].data) << i;
    }
  }
}

TEST_F(ClientSharedTest, ManyThreadsShareOneClient) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = [&]() -> Status {
        ASSIGN_OR_RETURN(std::unique_ptr<SharedBuffer> buf, client_->AllocateShared(256 << 10));
        for (int i = 0; i < 20; ++i) {
          const std::string data = Pattern(100'000 + i, static_cast<uint32_t>(t * 100 + i));
          std::memcpy(buf->data(), data.data(), data.size());
          const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
          RETURN_IF_ERROR(
              client_->Put("bkt", key, std::string_view(buf->data(), data.size())).status());
          std::memset(buf->data(), 0, buf->size());
          ASSIGN_OR_RETURN(size_t n, client_->GetInto("bkt", key, buf->bytes()));
          if (std::string_view(buf->data(), n) != data) return Status::Corruption(key);
        }
        return Status::OK();
      }();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& st : results) ASSERT_OK(st);
}

}  // namespace
}  // namespace granary::testing

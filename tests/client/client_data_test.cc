// The client's data paths: large objects in parallel pinned chunks, GetInto, streaming writers
// of known and unknown size, abandoned uploads, and batches as one request each.
#include <gtest/gtest.h>

#include "client/client_fixture.h"

namespace granary::testing {
namespace {

TEST_F(ClientTest, LargeObjectStreamsAndReadsInParallelChunks) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  const std::string data = Pattern(64 << 20, 7);
  Result<ObjectInfo> put = client_->Put("bkt", "big", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, Md5Hex(data));
  // The server handed the payload to the writer in pieces, never the whole object at once.
  EXPECT_LE(api_->largest_append.load(), 1u << 20);
  EXPECT_GE(api_->appends.load(), 64);

  int opens_before = api_->opens.load();
  int pinned_before = api_->pinned_opens.load();
  Result<std::string> got = client_->Get("bkt", "big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  // One Open for the first chunk, then 63 ranged GETs of 1 MiB pinned to the version.
  EXPECT_EQ(api_->opens.load() - opens_before, 64);
  EXPECT_EQ(api_->pinned_opens.load() - pinned_before, 63);

  std::string buf(data.size() + 100, 'x');
  Result<size_t> n = client_->GetInto("bkt", "big", std::span<char>(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(std::string_view(buf).substr(0, data.size()) == data);
  EXPECT_EQ(buf.substr(data.size()), std::string(100, 'x'));

  std::string small(100, '\0');
  EXPECT_CODE(client_->GetInto("bkt", "big", std::span<char>(small)).status(),
              Code::kInvalidArgument);

  GetOptions range;
  range.offset = (5 << 20) + 3;
  range.length = (9 << 20) + 11;
  got = client_->Get("bkt", "big", range);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data.substr(range.offset, range.length));
}

TEST_F(ClientTest, ReaderInSmallBuffers) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  const std::string data = Pattern((3 << 20) + 777, 3);
  ASSERT_TRUE(client_->Put("bkt", "k", data).ok());
  auto reader = client_->Open("bkt", "k", {});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->length(), data.size());
  std::string out;
  char buf[100 * 1000];
  for (;;) {
    Result<size_t> n = (*reader)->Read(std::span<char>(buf, sizeof(buf)));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    out.append(buf, *n);
  }
  EXPECT_TRUE(out == data);
}

TEST_F(ClientTest, ReaderAbandonedMidPayloadLeavesClientUsable) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  ASSERT_TRUE(client_->Put("bkt", "k", Pattern(3 << 20)).ok());
  for (int i = 0; i < 20; ++i) {
    auto reader = client_->Open("bkt", "k", {});
    ASSERT_TRUE(reader.ok());
    char buf[10];
    ASSERT_TRUE((*reader)->Read(std::span<char>(buf, sizeof(buf))).ok());
  }  // each reader closes its connection with the payload unread
  EXPECT_EQ(client_->Get("bkt", "k")->size(), 3u << 20);
}

TEST_F(ClientTest, ObjectChangedDuringReadIsReported) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  ASSERT_TRUE(client_->Put("bkt", "k", Pattern(6 << 20, 1)).ok());
  auto reader = client_->Open("bkt", "k", {});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(client_->Put("bkt", "k", Pattern(6 << 20, 2)).ok());
  std::string buf(6 << 20, '\0');
  Result<size_t> n = (*reader)->Read(std::span<char>(buf));
  EXPECT_EQ(n.status().code(), Code::kPreconditionFailed) << n.status().ToString();
}

TEST_F(ClientTest, StreamingWriterOfUnknownSize) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  PutOptions options;  // expected_size unknown: a chunked payload
  auto writer = client_->BeginPut("bkt", "stream", options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::string all;
  for (size_t size : {size_t{1}, size_t{0}, size_t{70000}, size_t{20} << 20, size_t{5}}) {
    std::string piece = Pattern(size, static_cast<uint32_t>(size));
    ASSERT_OK((*writer)->Append(piece));
    all += piece;
  }
  Result<ObjectInfo> info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, all.size());
  EXPECT_TRUE(*client_->Get("bkt", "stream") == all);
  EXPECT_CODE((*writer)->Append("more"), Code::kInvalidArgument);
}

TEST_F(ClientTest, WriterWithWrongSizeOrAbandonedStoresNothing) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  PutOptions options;
  options.expected_size = 10;
  {
    auto writer = client_->BeginPut("bkt", "short", options);
    ASSERT_TRUE(writer.ok());
    ASSERT_OK((*writer)->Append("12345"));
    EXPECT_CODE((*writer)->Commit().status(), Code::kInvalidArgument);
  }
  {
    auto writer = client_->BeginPut("bkt", "long", options);
    ASSERT_TRUE(writer.ok());
    EXPECT_CODE((*writer)->Append("12345678901"), Code::kInvalidArgument);
    EXPECT_CODE((*writer)->Commit().status(), Code::kInvalidArgument);
  }
  {
    auto writer = client_->BeginPut("bkt", "dropped", options);
    ASSERT_TRUE(writer.ok());
    ASSERT_OK((*writer)->Append("123"));
  }  // destroyed without Commit
  for (const char* key : {"short", "long", "dropped"}) {
    EXPECT_CODE(client_->Head("bkt", key, {}).status(), Code::kNotFound) << key;
  }
  // The client still works after discarding those connections.
  ASSERT_TRUE(client_->Put("bkt", "ok", "fine").ok());
}

TEST_F(ClientTest, PutFailureDrainsPayloadAndKeepsConnection) {
  ClientOptions one = SmallChunks();
  one.max_connections = 1;
  auto client = Connect(one);
  ASSERT_NE(client, nullptr);
  // The bucket does not exist: the server answers once the 8 MiB payload is read away.
  EXPECT_CODE(client->Put("missing", "k", Pattern(8 << 20)).status(), Code::kNoSuchBucket);
  ASSERT_OK(client->CreateBucket("bkt"));
  EXPECT_TRUE(client->Put("bkt", "k", "v").ok());
}

TEST_F(ClientTest, BatchesAreOneRequestEach) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  std::vector<std::string> data;
  std::vector<PutItem> items;
  for (int i = 0; i < 200; ++i) data.push_back(Pattern(i * 37, i));
  for (int i = 0; i < 200; ++i) {
    PutItem item;
    item.key = "k" + std::to_string(i);
    item.data = data[i];
    item.options.content_type = "t/" + std::to_string(i);
    items.push_back(item);
  }
  items.push_back(PutItem{"a/../bad", "x", {}});  // one bad item does not fail the batch

  std::vector<Result<ObjectInfo>> put = client_->PutMany("bkt", items);
  ASSERT_EQ(put.size(), items.size());
  EXPECT_EQ(api_->put_many_calls.load(), 1);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(put[i].ok()) << i << ": " << put[i].status().ToString();
    EXPECT_EQ(put[i]->etag, Md5Hex(data[i]));
    EXPECT_EQ(put[i]->content_type, "t/" + std::to_string(i));
  }
  EXPECT_EQ(put[200].status().code(), Code::kInvalidArgument);

  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("k" + std::to_string(i));
  keys.push_back("missing");
  std::vector<Result<std::string>> got = client_->GetMany("bkt", keys);
  ASSERT_EQ(got.size(), keys.size());
  EXPECT_EQ(api_->get_many_calls.load(), 1);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
    EXPECT_TRUE(*got[i] == data[i]) << i;
  }
  EXPECT_EQ(got[200].status().code(), Code::kNotFound);

  std::vector<std::string> storage(keys.size());
  std::vector<std::span<char>> buffers;
  for (size_t i = 0; i < keys.size(); ++i) {
    storage[i].assign(i == 100 ? 10 : 200 * 37, '\0');  // key 100 does not fit
    buffers.push_back(std::span<char>(storage[i]));
  }
  std::vector<Result<size_t>> into = client_->GetManyInto("bkt", keys, buffers);
  ASSERT_EQ(into.size(), keys.size());
  EXPECT_EQ(api_->get_many_calls.load(), 2);
  for (int i = 0; i < 200; ++i) {
    if (i == 100) {
      EXPECT_EQ(into[i].status().code(), Code::kInvalidArgument);
      continue;
    }
    ASSERT_TRUE(into[i].ok()) << i << ": " << into[i].status().ToString();
    ASSERT_EQ(*into[i], data[i].size());
    EXPECT_TRUE(std::string_view(storage[i]).substr(0, *into[i]) == data[i]) << i;
  }
  EXPECT_EQ(into[200].status().code(), Code::kNotFound);

  std::vector<Status> deleted = client_->DeleteMany("bkt", keys);
  ASSERT_EQ(deleted.size(), keys.size());
  EXPECT_EQ(api_->delete_many_calls.load(), 1);
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(deleted[i].ok()) << deleted[i].ToString();
  EXPECT_EQ(deleted[200].code(), Code::kNotFound);
  EXPECT_TRUE(client_->List("bkt", {})->objects.empty());

  std::vector<std::span<char>> too_few(1);
  std::vector<Result<size_t>> mismatch = client_->GetManyInto("bkt", keys, too_few);
  ASSERT_EQ(mismatch.size(), keys.size());
  EXPECT_EQ(mismatch[0].status().code(), Code::kInvalidArgument);
}

TEST_F(ClientTest, BatchesSplitBeyondRequestLimits) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  // 100 items of 1 MiB: more than one request's worth of payload.
  std::string blob = Pattern(1 << 20);
  std::vector<PutItem> items;
  for (int i = 0; i < 100; ++i) items.push_back(PutItem{"k" + std::to_string(i), blob, {}});
  std::vector<Result<ObjectInfo>> put = client_->PutMany("bkt", items);
  for (const auto& r : put) ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(api_->put_many_calls.load(), 2);
  // No items at all.
  EXPECT_TRUE(client_->PutMany("bkt", {}).empty());
  EXPECT_TRUE(client_->GetMany("bkt", {}).empty());
}

}  // namespace
}  // namespace granary::testing
